"""The shell every page shares: home page, fragments, errors, static assets, health."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.messaging import outbox
from tests.conftest import FROZEN_AT
from tests.factories import create_outbox_message
from tests.querycount import CountQueries

SECURITY_HEADERS = {
    "content-security-policy": [
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ],
    "x-content-type-options": ["nosniff"],
    "referrer-policy": ["same-origin"],
    "cache-control": ["no-store"],
}


def assert_security_headers(response: httpx.Response) -> None:
    for name, fragments in SECURITY_HEADERS.items():
        value = response.headers.get(name, "")
        for fragment in fragments:
            assert fragment in value, f"{name}: {value!r} lacks {fragment!r}"
    assert "unsafe-inline" not in response.headers["content-security-policy"]


async def test_home_page_says_what_it_is_for_and_how_to_get_help(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="fr" dir="ltr">' in html
    assert "Paris avenir : votre espace après l’ASE" in html
    assert 'href="/connexion"' in html
    assert "Besoin d’aide tout de suite ?" in html
    for number in ("115", "3114", "17", "112", "3919"):
        assert f'href="tel:{number}"' in html
    assert_security_headers(response)


async def test_home_page_has_no_inline_script_or_style(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html and " style=" not in html
    assert " on" not in re.sub(r'"[^"]*"', '""', html).lower().replace("onnexion", "")


async def test_full_page_or_fragment_from_one_template(client: httpx.AsyncClient) -> None:
    full = await client.get("/")
    fragment = await client.get("/", headers={"HX-Request": "true"})
    boosted = await client.get("/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in full.text and "<html" in boosted.text
    assert "<html" not in fragment.text and "<header" not in fragment.text
    assert "Paris avenir : votre espace après l’ASE" in fragment.text
    assert "HX-Request" in full.headers["vary"]


async def test_unknown_page_is_a_french_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/cette-page-n-existe-pas")
    assert response.status_code == 404
    assert "Page introuvable" in response.text
    assert 'href="/"' in response.text
    assert_security_headers(response)


async def test_htmx_errors_go_to_the_toast(client: httpx.AsyncClient) -> None:
    response = await client.get("/nulle-part", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#toast"
    assert "<html" not in response.text and "Page introuvable" in response.text


async def test_server_errors_are_a_french_500_without_details(app: FastAPI) -> None:
    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("secret detail +33639980012")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/test-only/boom")
    assert response.status_code == 500
    assert "Un problème technique est arrivé" in response.text
    assert "secret detail" not in response.text and "3998" not in response.text


async def test_static_assets_have_versioned_urls_and_a_long_cache(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/")).text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(url.endswith("/js/htmx.min.js") for url in urls)
    assert any(url.endswith("/css/app.css") for url in urls)
    for url in urls:
        response = await client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = await client.get("/static/000000000000/css/app.css")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    # Only files of static/ are served, whatever the path says.
    assert (await client.get("/static/000000000000/..%2Fpyproject.toml")).status_code == 404
    assert (await client.get("/static/000000000000/css/nothing.css")).status_code == 404


async def test_responses_are_compressed(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"


async def test_healthz_answers_200_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_when_the_database_answers_and_nothing_is_late(
    client: httpx.AsyncClient, session: Session
) -> None:
    create_outbox_message(session, now=FROZEN_AT - timedelta(minutes=5))  # due, 5 min late
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert 300 <= response.json()["oldest_due_seconds"] < 310


async def test_readyz_says_the_outbox_is_behind_when_a_message_waited_too_long(
    client: httpx.AsyncClient, session: Session
) -> None:
    create_outbox_message(session, now=FROZEN_AT - timedelta(minutes=11))
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "outbox behind"
    assert response.json()["oldest_due_seconds"] >= 660


def test_what_quiet_hours_hold_back_is_not_late(session: Session) -> None:
    evening = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # 19:00 in Paris
    create_outbox_message(session, now=evening, respects_quiet_hours=True)
    midnight = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # midnight in Paris: quiet hours
    assert outbox.oldest_due_wait(session, midnight) is None
    morning = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # 10:00: it may leave, and is late
    assert outbox.oldest_due_wait(session, morning) == timedelta(hours=15)


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:1/none"])
async def test_with_the_database_down_alive_but_not_ready(url: str, settings: Settings) -> None:
    unreachable = create_engine(url, connect_args={"connect_timeout": 2})
    application = create_app(settings, engine=unreachable)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert alive.status_code == 200  # restarting the process would not bring it back
    assert ready.status_code == 503
    assert ready.json() == {"status": "database unreachable"}
    unreachable.dispose()


async def test_home_page_runs_a_bounded_number_of_queries(
    client: httpx.AsyncClient, count_queries: CountQueries
) -> None:
    with count_queries() as counter:
        response = await client.get("/")
    assert response.status_code == 200
    assert counter.count == 0
