"""The CSRF token is bound to the session and its cookie is `__Host-` in production; a
request the CSRF check cannot read (a multipart boundary missing, invalid or a body cut
short) answers a 400 page in French, never a 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import get_session, transaction_scope
from paris_avenir.documents.models import Document
from paris_avenir.staff.models import StaffRole
from paris_avenir.youths.models import FollowUpNote
from tests.factories import assign, create_staff, create_youth
from tests.helpers import sign_in_as

TOKEN_IN_PAGE = re.compile(r'"x-csrftoken": "([^"]+)"')


async def _token(client: httpx.AsyncClient, page: str = "/") -> str:
    match = TOKEN_IN_PAGE.search((await client.get(page)).text)
    assert match
    return match.group(1)


def _notes(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(FollowUpNote)) or 0)


# --- Bound to the session ---------------------------------------------------------------------


async def test_a_token_from_another_session_is_refused(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    """The attacker has a valid pair (cookie and token) of their own session, and manages to
    plant that cookie in the victim's browser: the victim's session refuses it."""
    referent = create_staff(session)
    youth = create_youth(session)
    assign(session, youth, referent)
    attacker = create_staff(session)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as theirs:
        sign_in_as(theirs, app, session, staff=attacker)
        their_token = await _token(theirs, "/pro")
        (their_cookie,) = [cookie for cookie in theirs.cookies.jar if cookie.name == "csrftoken"]
    sign_in_as(client, app, session, staff=referent)
    own_token = await _token(client, "/pro")
    assert their_token != own_token
    # Planted in the victim's browser: it replaces the victim's own cookie.
    client.cookies.jar.set_cookie(their_cookie)
    assert [c.value for c in client.cookies.jar if c.name == "csrftoken"] == [their_token]
    forged = await client.post(
        f"/pro/jeunes/{youth.id}/notes", data={"csrftoken": their_token, "note": "Intrus"}
    )
    assert forged.status_code == 403
    assert "La page a expiré" in forged.text
    assert _notes(session) == 0
    # The victim's own page, reloaded, works.
    fresh = await _token(client, "/pro")
    written = await client.post(
        f"/pro/jeunes/{youth.id}/notes", data={"csrftoken": fresh, "note": "Appel du jour"}
    )
    assert written.status_code in {200, 303}, written.text
    assert _notes(session) == 1


async def test_a_token_issued_before_signing_in_no_longer_works_after(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    referent = create_staff(session)
    youth = create_youth(session)
    assign(session, youth, referent)
    before = await _token(client, "/")
    sign_in_as(client, app, session, staff=referent)
    stale = await client.post(
        f"/pro/jeunes/{youth.id}/notes", data={"csrftoken": before, "note": "Ancienne page"}
    )
    assert stale.status_code == 403
    assert _notes(session) == 0
    # The next page the browser loads carries a token for the new session, and a new cookie.
    after = await _token(client, "/pro")
    assert after != before
    written = await client.post(
        f"/pro/jeunes/{youth.id}/notes", data={"csrftoken": after, "note": "Nouvelle page"}
    )
    assert written.status_code in {200, 303}
    assert _notes(session) == 1


# --- The cookie ---------------------------------------------------------------------------------


@pytest.fixture
def prod_app(
    tmp_path: Path, engine: Engine, session: Session, session_factory: sessionmaker[Session]
) -> FastAPI:
    settings = Settings(
        env="prod",
        secret_key="prod-test-secret-" + "y" * 32,
        encryption_keys=Fernet.generate_key().decode(),
        database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        sms_file=tmp_path / "sms.jsonl",
        upload_dir=tmp_path / "uploads",
        smtp_url="smtp://127.0.0.1:9",
    )
    application = create_app(settings, engine=engine, session_factory=session_factory)

    def test_session() -> Iterator[Session]:
        yield from transaction_scope(session)

    application.dependency_overrides[get_session] = test_session
    return application


@pytest.fixture
async def prod_client(prod_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=prod_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


async def test_in_production_the_cookie_is_host_prefixed_and_still_works(
    prod_app: FastAPI, prod_client: httpx.AsyncClient, session: Session
) -> None:
    referent = create_staff(session)
    youth = create_youth(session)
    assign(session, youth, referent)
    sign_in_as(prod_client, prod_app, session, staff=referent)
    page = await prod_client.get("/pro")
    cookie = next(
        value
        for value in page.headers.get_list("set-cookie")
        if value.startswith("__Host-csrftoken=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert "secure" in attributes and "path=/" in cookie.lower().replace(" ", "")
    assert "domain" not in attributes
    assert "csrftoken" not in {name for name in prod_client.cookies if name != "__Host-csrftoken"}
    token = TOKEN_IN_PAGE.search(page.text)
    assert token
    written = await prod_client.post(
        f"/pro/jeunes/{youth.id}/notes", data={"csrftoken": token.group(1), "note": "Prod"}
    )
    assert written.status_code in {200, 303}
    assert _notes(session) == 1


async def test_in_development_over_http_the_cookie_keeps_its_plain_name(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    cookie = next(
        value for value in page.headers.get_list("set-cookie") if value.startswith("csrftoken=")
    )
    assert "secure" not in cookie.lower()


# --- Malformed multipart ---------------------------------------------------------------------


def _multipart(boundary: str, token: str, fields: dict[str, str], file: bytes) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in {"csrftoken": token, **fields}.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="fichier"; '
        f'filename="piece.csv"\r\nContent-Type: text/csv\r\n\r\n'
    )
    return "".join(parts).encode() + file + f"\r\n--{boundary}--\r\n".encode()


UPLOADS = {
    # route, fields, what the page says once the body was read
    "documents": ("/mon-espace/documents", {"type_document": "pas-un-type"}, "type de document"),
    "import": ("/pro/import", {"essai": "oui"}, "import"),
}


@pytest.fixture(params=sorted(UPLOADS))
async def upload(
    request: pytest.FixtureRequest, app: FastAPI, client: httpx.AsyncClient, session: Session
) -> tuple[str, dict[str, str], str, str]:
    route, fields, text = UPLOADS[request.param]
    if request.param == "documents":
        sign_in_as(client, app, session, youth=create_youth(session))
    else:
        sign_in_as(client, app, session, staff=create_staff(session, StaffRole.SUPERVISOR))
    return route, fields, text, await _token(client, route)


BOUNDARY = "----paris-avenir-test-7f3a"
CSV = b"ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date\n"


@pytest.mark.parametrize(
    "content_type",
    [
        f"multipart/form-data;boundary={BOUNDARY}",  # no space: legal, used to answer 500
        f'multipart/form-data; boundary="{BOUNDARY}"',  # quoted: legal
        f"multipart/form-data; boundary={BOUNDARY}; charset=utf-8",
    ],
)
async def test_a_legal_but_unusual_content_type_is_read(
    client: httpx.AsyncClient, upload: tuple[str, dict[str, str], str, str], content_type: str
) -> None:
    route, fields, text, token = upload
    response = await client.post(
        route,
        content=_multipart(BOUNDARY, token, fields, CSV),
        headers={"Content-Type": content_type},
    )
    assert response.status_code not in {400, 403, 500}, response.text
    assert text in response.text.lower()


@pytest.mark.parametrize(
    ("content_type", "cut"),
    [
        ("multipart/form-data", 0),  # no boundary at all
        ("multipart/form-data; boundary=", 0),  # an empty one
        ("multipart/form-data; boundary=" + "x" * 71, 0),  # longer than RFC 2046 allows
        ("multipart/form-data; boundary=bad\u00e9", 0),  # not a boundary character
        (f"multipart/form-data; boundary={BOUNDARY}", 40),  # cut inside the first part
        (f"multipart/form-data; boundary={BOUNDARY}", 25),  # cut inside the file
        ("multipart/form-data; boundary=another-one", 0),  # the body uses another boundary
    ],
)
async def test_a_malformed_multipart_body_answers_a_400_page_in_french(
    client: httpx.AsyncClient,
    session: Session,
    upload: tuple[str, dict[str, str], str, str],
    content_type: str,
    cut: int,
) -> None:
    route, fields, _text, token = upload
    body = _multipart(BOUNDARY, token, fields, CSV)
    if cut == 40:
        body = body[: len(f"--{BOUNDARY}\r\nContent-Disposition: form-da")]
    elif cut == 25:
        body = body[: -len(f"\r\n--{BOUNDARY}--\r\n") - 25]
    response = await client.post(
        route, content=body, headers={b"Content-Type": content_type.encode("utf-8")}
    )
    assert response.status_code == 400, response.text
    assert "text/html" in response.headers["content-type"]
    assert "Ce qui a été envoyé n’est pas correct" in response.text
    assert "Vérifiez ce que vous avez écrit, puis réessayez." in response.text
    assert (session.scalar(select(func.count()).select_from(Document)) or 0) == 0


async def test_a_form_body_that_is_not_utf8_answers_a_400_page(client: httpx.AsyncClient) -> None:
    token = await _token(client, "/connexion")
    response = await client.post(
        "/connexion",
        content=f"csrftoken={token}&destination=".encode() + b"\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "Ce qui a été envoyé n’est pas correct" in response.text
