"""PARIS_AVENIR_LOG_FORMAT=json: one JSON object per line, one access line per request with
its method, route template, status, duration and request id (the response's X-Request-ID),
and nothing personal: the lines of a whole sign-in pass the run's privacy scan."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from paris_avenir import logs
from paris_avenir.config import Settings
from tests.factories import create_youth
from tests.helpers import code_in, last_sms, post_form
from tests.log_privacy import GENERATED, platform_routes, scan

PHONE = "+33639980066"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every record of the test, through the JSON formatter configure_logging would pick."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield written
    finally:
        root.removeHandler(handler)


async def test_json_lines_of_a_sign_in_parse_and_hold_nothing_personal(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    settings: Settings,
    json_lines: io.StringIO,
) -> None:
    create_youth(session, first_name="Awa", phone=PHONE, email="awa.k@example.org")
    session.commit()
    asked = await post_form(client, "/connexion", {"destination": "06 39 98 00 66"})
    code = code_in(last_sms(settings)["text"])
    signed_in = await post_form(client, "/connexion/code", {"code": code})
    assert signed_in.headers["location"] == "/mon-espace"
    searched = await client.get("/connexion?destination=awa.k%40example.org")

    def page_that_logs() -> PlainTextResponse:
        logging.getLogger("paris_avenir.test.page").info("answering")
        return PlainTextResponse("ok")

    app.add_api_route("/essai/journal", page_that_logs)
    page = await client.get("/essai/journal")
    logging.getLogger("paris_avenir.test").error(
        "failed", exc_info=ValueError(f"no youth with {PHONE}")
    )

    lines = json_lines.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    access = [record for record in records if record["logger"] == "paris_avenir.access"]
    assert [(r["method"], r["route"], r["status"]) for r in access if r["method"] == "POST"] == [
        ("POST", "/connexion", 303),
        ("POST", "/connexion/code", 303),
    ]
    for record in access:
        assert set(record) == {
            "time",
            "level",
            "logger",
            "message",
            "request_id",
            "method",
            "route",
            "status",
            "duration_ms",
            "client_network",
        }
        assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
    ids = [record["request_id"] for record in access]
    assert len(set(ids)) == len(ids), "one id per request"
    for response in (asked, signed_in, searched, page):
        assert response.headers["x-request-id"] in ids
    # Lines written while answering a request carry its id too (the sign-in's own lines).
    # A line written while answering (in the thread pool, as every handler with the
    # database) carries the request's id too.
    noted = next(record for record in records if record["logger"] == "paris_avenir.test.page")
    assert noted["request_id"] == page.headers["x-request-id"]
    failure = next(record for record in records if record["logger"] == "paris_avenir.test")
    assert "ValueError (message withheld from the log)" in failure["exception"]

    findings = scan(
        lines, tokens=GENERATED.tokens, codes=GENERATED.codes | {code}, routes=platform_routes()
    )
    assert findings == []
    text = json_lines.getvalue()
    for secret in ("39980066", "39 98 00 66", "awa.k", "Awa", code, "?destination"):
        assert secret not in text


def test_the_log_format_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logs.LOG_FORMAT_ENV, raising=False)
    assert type(logs.build_formatter(logs.log_format())) is logs.PrivateFormatter
    monkeypatch.setenv(logs.LOG_FORMAT_ENV, "JSON")
    assert type(logs.build_formatter(logs.log_format())) is logs.JsonFormatter
    monkeypatch.setenv(logs.LOG_FORMAT_ENV, "xml")
    with pytest.raises(SystemExit, match="PARIS_AVENIR_LOG_FORMAT='xml'"):
        logs.log_format()
