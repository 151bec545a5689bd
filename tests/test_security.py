"""CSRF on every state change, security headers on every response, HSTS in production."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import SessionDep
from paris_avenir.staff.models import Team
from tests.factories import TEST_FERNET_KEY


@pytest.fixture
def app_with_a_form(app: FastAPI) -> FastAPI:
    """A state-changing route, as every later form will be, to exercise the protection."""

    @app.post("/test-only/teams")
    async def create_team(request: Request, session: SessionDep) -> PlainTextResponse:
        form = await request.form()
        session.add(Team(name=str(form["name"])))
        return PlainTextResponse("created")

    return app


async def csrf_token(client: httpx.AsyncClient) -> str:
    html = (await client.get("/")).text
    match = re.search(r'"x-csrftoken": "([^"]+)"', html)
    assert match, "the page must carry the CSRF token for htmx"
    return match.group(1)


def team_names(session: Session) -> list[str]:
    return list(session.scalars(select(Team.name)))


async def test_post_without_token_is_refused_and_changes_nothing(
    app_with_a_form: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    await csrf_token(client)  # the browser holds the cookie, the attacker has no token
    response = await client.post("/test-only/teams", data={"name": "Intrus"})
    assert response.status_code == 403
    assert "La page a expiré" in response.text
    assert "nous n’avons rien enregistré" in response.text
    assert "content-security-policy" in response.headers
    assert team_names(session) == []


async def test_post_without_any_cookie_is_refused_too(
    app_with_a_form: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    response = await client.post("/test-only/teams", data={"name": "Intrus"})
    assert response.status_code == 403
    assert team_names(session) == []


async def test_post_with_a_wrong_token_is_refused(
    app_with_a_form: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    await csrf_token(client)
    response = await client.post("/test-only/teams", data={"name": "Intrus", "csrftoken": "faux"})
    assert response.status_code == 403
    assert team_names(session) == []


async def test_form_field_token_lets_a_plain_form_through(
    app_with_a_form: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    token = await csrf_token(client)
    response = await client.post("/test-only/teams", data={"csrftoken": token, "name": "Nord"})
    assert response.status_code == 200
    assert team_names(session) == ["Nord"]


async def test_header_token_lets_an_htmx_request_through(
    app_with_a_form: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    token = await csrf_token(client)
    response = await client.post(
        "/test-only/teams",
        data={"name": "Est"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status_code == 200
    assert team_names(session) == ["Est"]


async def test_hsts_only_in_production(settings: Settings) -> None:
    prod = create_app(
        settings.model_copy(update={"env": "prod", "encryption_keys": TEST_FERNET_KEY})
    )
    transport = httpx.ASGITransport(app=prod)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        response = await http.get("/")
    assert "max-age=" in response.headers["strict-transport-security"]
    assert "; Secure" in response.headers["set-cookie"]


async def test_no_hsts_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert "strict-transport-security" not in response.headers


@pytest.fixture
def app_with_an_upload(app: FastAPI) -> FastAPI:
    @app.post("/test-only/upload")
    async def receive_upload(request: Request, session: SessionDep) -> PlainTextResponse:
        form = await request.form()
        session.add(Team(name=str(form["name"])))
        return PlainTextResponse("stored")

    return app


async def test_an_upload_without_its_token_is_refused(
    app_with_an_upload: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    await csrf_token(client)
    response = await client.post(
        "/test-only/upload",
        data={"name": "Intrus"},
        files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert response.status_code == 403
    assert team_names(session) == []


@pytest.mark.parametrize("token_first", [True, False])
async def test_an_upload_with_its_token_goes_through(
    app_with_an_upload: FastAPI, client: httpx.AsyncClient, session: Session, token_first: bool
) -> None:
    token = await csrf_token(client)
    boundary = "limite"
    token_part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\n{token}\r\n'
    )
    name_part = f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nSud\r\n'
    file_part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n"
    )
    parts = (
        [token_part, name_part, file_part] if token_first else [name_part, file_part, token_part]
    )
    body = "".join(parts) + f"--{boundary}--\r\n"
    response = await client.post(
        "/test-only/upload",
        content=body.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 200
    assert team_names(session) == ["Sud"]


async def test_an_oversized_request_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/connexion",
        content=b"x",
        headers={
            "Content-Length": str(41 * 1024 * 1024),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 413
