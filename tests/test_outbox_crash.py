"""The dispatcher killed with SIGKILL in the middle of a batch, then restarted: nothing lost,
nothing sent twice — on SQLite and on PostgreSQL, with a real process and Brevo's HTTP API."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from paris_avenir.db import create_database_engine
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels.sms_brevo import reference_tag
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus, OutboxStatusEvent
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.youths.models import Channel
from tests.conftest import BACKENDS, postgres_schema_url
from tests.helpers import ForkedCli, forked_cli
from tests.servers import BrevoSmsApi

SCHEMA = "outbox_crash"
MESSAGES = 30
KILL_AFTER = 8
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.sqlite3'}"
    else:
        url = postgres_schema_url(SCHEMA, needed_for="the PostgreSQL crash test")
    engine = create_database_engine(url)
    upgrade_to_head(engine)
    yield url, engine
    engine.dispose()


def _run(url: str, api: BrevoSmsApi, now: datetime) -> ForkedCli:
    """`paris-avenir outbox dispatch` in its own process, as the scheduler would run it
    (forked from the test: a real process to kill, without a second of imports)."""
    environment = {
        "PARIS_AVENIR_DATABASE_URL": url,
        "PARIS_AVENIR_SMS_BACKEND": "http",
        "PARIS_AVENIR_SMS_API_URL": api.url,
        "PARIS_AVENIR_SMS_API_KEY": BrevoSmsApi.API_KEY,
        "PARIS_AVENIR_SMTP_URL": "smtp://127.0.0.1:9",
    }
    return forked_cli(environment, "outbox", "dispatch", "--now", now.isoformat())


def test_sigkill_mid_batch_loses_nothing_and_sends_nothing_twice(
    database: tuple[str, Engine], sms_api: BrevoSmsApi
) -> None:
    url, engine = database
    factory = sessionmaker(bind=engine)
    with factory.begin() as session:
        for number in range(MESSAGES):
            outbox.enqueue(
                session,
                channel=Channel.SMS,
                recipient=f"+3361234{number:04d}",
                template="crash_test",
                body_text=f"Message {number}",
                idempotency_key=f"crash-{number}",
                now=NOW - timedelta(minutes=1),
            )
    engine.dispose()  # the children start with no connection of ours
    api = sms_api
    # Each answer takes a while after the SMS has left: the kill lands in that window.
    api.response_delay = 0.3
    first = _run(url, api, NOW)
    deadline = time.monotonic() + 60
    while len(api.sent) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(api.sent) >= KILL_AFTER, first.wait(timeout=5)
    os.kill(first.pid, signal.SIGKILL)
    returncode, _err = first.wait(timeout=10)
    assert returncode == -signal.SIGKILL

    time.sleep(api.response_delay + 0.2)  # a request already at the provider is counted
    at_the_provider = len(api.sent)
    with factory() as session:
        statuses = Counter(session.scalars(select(OutboxMessage.status)))
    # The kill left the batch half done: the sends at the provider (several at once) and
    # the window claimed ahead of them in `sending`, the rest still waiting.
    assert statuses[OutboxStatus.SENDING] >= at_the_provider - statuses[OutboxStatus.SENT] >= 1
    assert statuses[OutboxStatus.QUEUED] >= 1

    # Restarted at once, the in-flight message waits for its lease; the rest go out.
    api.response_delay = 0.0
    again = _run(url, api, NOW + timedelta(seconds=30))
    returncode, err = again.wait(timeout=120)
    assert returncode == 0, err
    # Once the lease is over, the interrupted one is looked up at Brevo, not re-sent.
    later = _run(url, api, NOW + outbox.SENDING_LEASE + timedelta(minutes=1))
    returncode, err = later.wait(timeout=120)
    assert returncode == 0, err

    references = Counter(
        tag for event in api.sent for tag in event["tags"] if tag.startswith("ref:")
    )

    assert len(references) == MESSAGES  # nothing lost
    assert set(references.values()) == {1}  # nothing sent twice
    with factory() as session:
        messages = session.scalars(select(OutboxMessage)).all()
        assert {message.status for message in messages} == {OutboxStatus.SENT}
        provider_ids = {str(event["messageId"]) for event in api.sent}
        assert {message.provider_message_id for message in messages} == provider_ids
        recovered = session.scalars(
            select(OutboxStatusEvent.detail).where(
                OutboxStatusEvent.detail == "found at the provider: not sent again"
            )
        ).all()
        # Exactly those the provider had taken but the dispatcher had not recorded.
        assert len(recovered) == at_the_provider - statuses[OutboxStatus.SENT]
        assert {reference_tag(message.idempotency_key) for message in messages} == set(references)
