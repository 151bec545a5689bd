"""The dispatcher has several messages at the provider at once (Brevo's HTTP API on
loopback), and still sends each exactly once: two dispatchers on one database, or a
dispatcher and the outbox worker racing for the same messages, on SQLite and PostgreSQL. A
provider that rate-limits or hangs on some messages delays those, not the others."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.youths.models import Channel
from tests.conftest import BACKENDS, postgres_schema_url
from tests.servers import BrevoSmsApi

SCHEMA = "outbox_concurrency"
# A Wednesday, 10:00 in Paris: inside the sending window.
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
CONCURRENCY = 8


def _channels(api: BrevoSmsApi, *, concurrency: int = CONCURRENCY, timeout: float = 5) -> Channels:
    return Channels(
        sms=BrevoSmsSender(
            api_url=api.url, api_key=BrevoSmsApi.API_KEY, sender="ParisAvenir", timeout=timeout
        ),
        email=SmtpEmailSender("smtp://127.0.0.1:9", sender="pa@example.org"),
        send_concurrency=concurrency,
    )


def _queue(factory: sessionmaker[Session], count: int, prefix: str = "c") -> list[str]:
    keys = [f"{prefix}-{number}" for number in range(count)]
    with factory.begin() as session:
        for number, key in enumerate(keys):
            outbox.enqueue(
                session,
                channel=Channel.SMS,
                recipient=f"+3361234{number:04d}",
                template="concurrency_test",
                body_text=f"Message {number}",
                idempotency_key=key,
                respects_quiet_hours=False,
                now=NOW - timedelta(minutes=1),
            )
    return keys


def _references(api: BrevoSmsApi) -> Counter[str]:
    """How many times the provider took each message (by the reference tag)."""
    return Counter(tag for event in api.sent for tag in event["tags"] if tag.startswith("ref:"))


def _statuses(factory: sessionmaker[Session]) -> Counter[OutboxStatus]:
    with factory() as session:
        return Counter(session.scalars(select(OutboxMessage.status)))


def _most_at_once(api: BrevoSmsApi, delay: float) -> int:
    """Calls that reached the provider less than a delay apart were there together."""
    arrivals = [call.at for call in api.calls]
    return max(
        sum(1 for other in arrivals if 0 <= arrival - other < delay * 0.9) for arrival in arrivals
    )


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own: the dispatchers of a test share it through the pool, as two
    processes would."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'concurrency.sqlite3'}"
    else:
        url = postgres_schema_url(SCHEMA, needed_for="dispatchers racing on PostgreSQL")
    engine = create_database_engine(url, pool_size=10, max_overflow=40)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def test_a_pass_has_several_messages_at_the_provider_and_few_transactions(
    session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    keys = _queue(session_factory, 40)
    sms_api.response_delay = 0.2
    report = outbox.dispatch_due(session_factory, _channels(sms_api), now=NOW)
    assert len(report.sent) == report.claimed == 40
    assert _statuses(session_factory) == {OutboxStatus.SENT: 40}
    assert _most_at_once(sms_api, 0.2) == CONCURRENCY
    assert sorted(_references(sms_api)) == sorted(f"ref:{key}" for key in keys)


def test_one_at_a_time_when_the_concurrency_is_one(
    session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    _queue(session_factory, 6)
    sms_api.response_delay = 0.1
    report = outbox.dispatch_due(session_factory, _channels(sms_api, concurrency=1), now=NOW)
    assert len(report.sent) == 6
    assert _most_at_once(sms_api, 0.1) == 1


def test_a_rate_limit_or_a_hung_send_delays_only_its_own_message(
    session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    keys = _queue(session_factory, 40)
    sms_api.next_statuses = [429, 429, 429]  # Brevo's "too many requests"
    # The next two SMS are taken, but their answers come after the adapter's timeout.
    sms_api.next_delays = [3.0, 3.0]
    channels = _channels(sms_api, timeout=1.0)
    report = outbox.dispatch_due(session_factory, channels, now=NOW)
    with session_factory() as session:
        errors = Counter(
            session.scalars(
                select(OutboxMessage.last_error).where(OutboxMessage.id.in_(report.retried))
            )
        )
    assert len(report.retried) == 5 and len(report.sent) == 35, errors
    # The others did not wait behind the hung ones: every call reached the provider while
    # the first hung send was still waiting for its answer.
    slow = [call.at for call in sms_api.calls][3]
    assert all(call.at < slow + 1.0 for call in sms_api.calls)
    assert len(sms_api.calls) == 40

    # Their retry, after the backoff: the rate-limited ones are sent, the two the provider
    # had already taken are found there and not sent again.
    later = outbox.dispatch_due(session_factory, channels, now=NOW + timedelta(minutes=1))
    assert len(later.sent) == 5
    assert _statuses(session_factory) == {OutboxStatus.SENT: 40}
    references = _references(sms_api)
    assert sorted(references) == sorted(f"ref:{key}" for key in keys)
    assert set(references.values()) == {1}, "each SMS taken once by the provider"
    assert len(sms_api.calls) == 43  # 40, then the three that were refused


def _drain(
    factory: sessionmaker[Session],
    channels: Channels,
    start: threading.Barrier,
    now: datetime | None = NOW,
) -> int:
    """What the scheduler does: batch after batch while they come full."""
    start.wait()
    sent = 0
    while True:
        report = outbox.dispatch_due(factory, channels, now=now, limit=50)
        sent += len(report.sent)
        if report.claimed < 50:
            return sent


def test_two_dispatchers_in_parallel_send_each_message_once(
    database: Engine, sms_api: BrevoSmsApi
) -> None:
    factory = make_session_factory(database)
    keys = _queue(factory, 300)
    sms_api.response_delay = 0.01
    start = threading.Barrier(2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(
            pool.map(lambda _n: _drain(factory, _channels(sms_api), start), range(2), timeout=120)
        )
    assert sum(counts) == 300
    assert min(counts) > 0, "both dispatchers took part"
    references = _references(sms_api)
    assert len(sms_api.calls) == 300
    assert sorted(references) == sorted(f"ref:{key}" for key in keys)
    assert set(references.values()) == {1}
    assert _statuses(factory) == {OutboxStatus.SENT: 300}


def test_forty_sends_soon_racing_a_dispatcher_send_each_message_once(
    database: Engine, sms_api: BrevoSmsApi
) -> None:
    """Forty messages handed to the outbox worker at once (what forty SendSoon background
    tasks do) while a dispatcher pass finds them due: each leaves once."""
    factory = make_session_factory(database)
    keys = _queue(factory, 40)
    with factory() as session:
        ids = list(session.scalars(select(OutboxMessage.id)))
    sms_api.response_delay = 0.02
    channels = _channels(sms_api)
    worker = outbox.OutboxWorker(factory, channels)
    start = threading.Barrier(41)

    def hand_over(message_id: object) -> None:
        start.wait()
        worker.submit(message_id)  # type: ignore[arg-type]

    try:
        with ThreadPoolExecutor(max_workers=41) as pool:
            # On the clock, as the worker is: a lease is measured in the same time.
            dispatcher = pool.submit(_drain, factory, channels, start, None)
            list(pool.map(hand_over, ids))
            dispatcher.result(timeout=60)
    finally:
        worker.shutdown(wait=True)
    references = _references(sms_api)
    assert len(sms_api.calls) == 40
    assert sorted(references) == sorted(f"ref:{key}" for key in keys)
    assert set(references.values()) == {1}
    assert _statuses(factory) == {OutboxStatus.SENT: 40}
