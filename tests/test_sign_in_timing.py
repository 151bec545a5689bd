"""Asking for a sign-in code answers in the same time for a registered number and for a
number nobody has: before the answer, both run the same SQL statements and render nothing;
the code is rendered, queued and sent after the answer has left.

(Timed on a real server by bench/sign_in_timing.py; a timing assertion here would flake.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from paris_avenir.messaging import message_templates, texts
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.youths.models import Youth
from tests.factories import create_youth
from tests.helpers import csrf_token, sms_count
from tests.servers import SmtpServer

KNOWN_PHONE = "+33639980012"
KNOWN_EMAIL = "moussa.t@example.org"


@pytest.fixture
def youth(session: Session) -> Youth:
    youth = create_youth(session, phone=KNOWN_PHONE, email=KNOWN_EMAIL)
    session.commit()
    return youth


class Timeline:
    """What happens during one request, in order: SQL statements, renderings, the answer."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def before_answer(self) -> list[str]:
        return self.events[: self.events.index("answer")]

    def after_answer(self) -> list[str]:
        return self.events[self.events.index("answer") + 1 :]


@pytest.fixture
def timeline(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Timeline]:
    """Records each SQL statement and each rendering of a code's message, in order."""
    line = Timeline()
    render_sms = message_templates.render_sms
    render_email = texts.sign_in_code_email

    def rendering_sms(*args: Any, **kwargs: Any) -> str:
        line.events.append("render")
        return render_sms(*args, **kwargs)

    def rendering_email(*args: Any, **kwargs: Any) -> Any:
        line.events.append("render")
        return render_email(*args, **kwargs)

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            line.events.append("sql: " + " ".join(statement.split()))

    monkeypatch.setattr(message_templates, "render_sms", rendering_sms)
    monkeypatch.setattr(texts, "sign_in_code_email", rendering_email)
    event.listen(engine, "before_cursor_execute", before_execute)
    yield line
    event.remove(engine, "before_cursor_execute", before_execute)


Post = Callable[[str, dict[str, str]], Awaitable[httpx.Response]]


@pytest.fixture
async def traced(app: FastAPI, timeline: Timeline) -> AsyncIterator[tuple[httpx.AsyncClient, Post]]:
    """A client, and a POST whose timeline marks the moment the last byte of the answer is
    handed to the server (what runs after it is the background work)."""

    async def traced_app(scope: Any, receive: Any, send: Any) -> None:
        async def traced_send(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                timeline.events.append("answer")
            await send(message)

        await app(scope, receive, traced_send)

    transport = httpx.ASGITransport(app=traced_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def post(url: str, data: dict[str, str]) -> httpx.Response:
            token = await csrf_token(client)
            timeline.events.clear()
            return await client.post(url, data={"csrftoken": token, **data})

        yield client, post


async def test_known_and_unknown_numbers_do_the_same_work_before_the_answer(
    traced: tuple[httpx.AsyncClient, Post],
    timeline: Timeline,
    settings: Any,
    youth: Youth,
    session: Session,
) -> None:
    client, post = traced
    await post("/connexion", {"destination": "06 39 98 00 99"})  # warms the caches
    client.cookies.delete("tentative_connexion")

    sent = sms_count(settings)
    known = await post("/connexion", {"destination": "06 39 98 00 12"})
    known_before, known_after = timeline.before_answer(), timeline.after_answer()
    assert sms_count(settings) == sent + 1  # it did leave, after the answer
    client.cookies.delete("tentative_connexion")
    unknown = await post("/connexion", {"destination": "06 39 98 01 12"})
    unknown_before, unknown_after = timeline.before_answer(), timeline.after_answer()
    assert sms_count(settings) == sent + 1

    assert known.status_code == unknown.status_code == 303
    # Before the answer: the same statements, in the same order, and no rendering.
    assert known_before == unknown_before
    assert "render" not in known_before
    assert any(event.startswith("sql: INSERT INTO sign_in_attempt") for event in known_before)
    assert not any("outbox_message" in event for event in known_before)
    # After it: the registered number's code is rendered and queued; nothing for the other.
    assert "render" in known_after
    assert any(event.startswith("sql: INSERT INTO outbox_message") for event in known_after)
    assert "render" not in unknown_after
    assert not any("outbox_message" in event for event in unknown_after)
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


async def test_the_email_fallback_does_the_same_work_for_everyone_before_the_answer(
    app: FastAPI,
    traced: tuple[httpx.AsyncClient, Post],
    timeline: Timeline,
    youth: Youth,
    smtp_server: SmtpServer,
) -> None:
    from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender

    app.state.channels.email = SmtpEmailSender(smtp_server.url, sender="test@example.org")
    client, post = traced
    works: dict[str, tuple[list[str], list[str]]] = {}
    for name, number in (
        ("warm", "06 39 98 00 99"),
        ("known", "06 39 98 00 12"),
        ("unknown", "06 39 98 01 12"),
    ):
        client.cookies.delete("tentative_connexion")
        await post("/connexion", {"destination": number})
        response = await post("/connexion/code/email", {})
        assert response.status_code == 200
        works[name] = (timeline.before_answer(), timeline.after_answer())
    assert works["known"][0] == works["unknown"][0]
    assert "render" not in works["known"][0]
    assert "render" in works["known"][1] and "render" not in works["unknown"][1]
    # The code by email reached the youth's mailbox, and only theirs.
    assert [message["To"] for message in smtp_server.inbox] == [KNOWN_EMAIL]
