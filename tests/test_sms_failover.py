"""Two SMS providers behind the outbox (channels/sms_failover.py), against the two fake
servers speaking Brevo's and Primotexto's published APIs: the primary failing (5xx, slow
answers, timeouts) hands the traffic to the secondary once its bad sends pass the threshold
and not one message before; the primary gets it back after a healthy probation; a message
is sent once across the switch, through one provider, and its id and provider say which; and
a dispatcher killed with SIGKILL mid-send on either provider, then restarted, delivers every
message exactly once across both servers — on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
from paris_avenir.messaging.channels.sms_failover import (
    FailoverPolicy,
    Sample,
    SmsFailover,
    counts_by_provider,
    state,
)
from paris_avenir.messaging.channels.sms_primotexto import PrimotextoSmsSender, category_of
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus, OutboxStatusEvent
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.monitoring.metrics import DatabaseCollector
from paris_avenir.youths.models import Channel
from tests.conftest import BACKENDS, postgres_schema_url
from tests.helpers import ForkedCli, forked_cli
from tests.servers import BrevoSmsApi, PrimotextoSmsApi, running

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Paris
POLICY = FailoverPolicy(
    threshold=0.15,
    window=timedelta(minutes=15),
    slow=timedelta(seconds=0.25),
    min_sends=10,
    probation=timedelta(minutes=10),
    probe_percent=100,
)


@pytest.fixture
def brevo() -> Iterator[BrevoSmsApi]:
    yield from running(BrevoSmsApi())


@pytest.fixture
def primotexto() -> Iterator[PrimotextoSmsApi]:
    yield from running(PrimotextoSmsApi())


def _channels(brevo: BrevoSmsApi, primotexto: PrimotextoSmsApi) -> Channels:
    router = SmsFailover(
        {
            "brevo": BrevoSmsSender(
                api_url=brevo.url, api_key=BrevoSmsApi.API_KEY, sender="ParisAvenir", timeout=0.4
            ),
            "primotexto": PrimotextoSmsSender(
                api_url=primotexto.url, api_key=PrimotextoSmsApi.API_KEY, sender="ParisAvenir"
            ),
        },
        primary="brevo",
        secondary="primotexto",
        policy=POLICY,
    )
    return Channels(sms=router, email=None)  # type: ignore[arg-type]


def _queue(
    factory: sessionmaker[Session], key: str, now: datetime, text: str = ""
) -> OutboxMessage:
    with factory.begin() as session:
        return outbox.enqueue(
            session,
            channel=Channel.SMS,
            recipient=f"+336{abs(hash(key)) % 10**8:08d}",
            template="failover_test",
            body_text=text or f"Message {key}",
            idempotency_key=key,
            now=now,
        )


def _send(
    factory: sessionmaker[Session], channels: Channels, key: str, now: datetime, text: str = ""
) -> OutboxMessage:
    """One message queued and sent at once (the worker's path: one claim, one decision)."""
    message = _queue(factory, key, now, text)
    outbox.send_one(factory, message.id, channels, now=now)
    with factory() as session:
        return session.get_one(OutboxMessage, message.id)


def _received(brevo: BrevoSmsApi, primotexto: PrimotextoSmsApi) -> Counter[str]:
    """How many times each message reached a provider, across both fake servers (by the
    reference each carries: Brevo's tag, Primotexto's category)."""
    counts: Counter[str] = Counter(
        tag.removeprefix("ref:")
        for event in brevo.sent
        for tag in event["tags"]
        if tag.startswith("ref:")
    )
    counts.update(f"category:{event['category']}" for event in primotexto.sent)
    return counts


def _count_once(keys: list[str], received: Counter[str]) -> dict[str, int]:
    """For each of our keys, how many times either provider got it."""
    return {key: received[key] + received[f"category:{category_of(key)}"] for key in keys}


def _attempted_at(brevo: BrevoSmsApi, primotexto: PrimotextoSmsApi, key: str) -> str:
    """Which fake server the message's first request went to (accepted or not)."""
    at_brevo = [call.at for call in brevo.calls if f"ref:{key}" in call.payload["tag"]]
    category = category_of(key)
    at_primotexto = [call.at for call in primotexto.calls if call.payload["category"] == category]
    return min([(at, "brevo") for at in at_brevo] + [(at, "primotexto") for at in at_primotexto])[1]


def _inject(brevo: BrevoSmsApi, fault: str) -> None:
    if fault == "5xx":
        brevo.next_statuses = [500]
    elif fault == "slow":
        brevo.next_delays = [0.3]  # accepted, but past the 0.25 s limit
    else:
        brevo.next_delays = [0.6]  # past our client's 0.4 s: no answer (it has the SMS)


@pytest.mark.parametrize("fault", ["5xx", "slow", "timeout"])
def test_the_primary_is_left_once_its_bad_sends_pass_the_threshold_not_before(
    session_factory: sessionmaker[Session],
    brevo: BrevoSmsApi,
    primotexto: PrimotextoSmsApi,
    fault: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    channels = _channels(brevo, primotexto)
    keys = [f"m{number}" for number in range(1, 14)]
    providers: list[str] = []
    for number, key in enumerate(keys, start=1):
        if number in (3, 11):
            _inject(brevo, fault)
        with caplog.at_level(logging.ERROR):
            _send(session_factory, channels, key, T0 + timedelta(seconds=number))
        providers.append(_attempted_at(brevo, primotexto, key))

    # Ten sends, one bad (10 %): still Brevo. The eleventh bad too (2 of 11, 18 %): from
    # the twelfth, Primotexto.
    assert providers == ["brevo"] * 11 + ["primotexto"] * 2
    with session_factory() as session:
        current = state(session, "brevo")
    assert (current.active, current.switches) == ("primotexto", 1)
    alerts = [r.getMessage() for r in caplog.records if "switched" in r.getMessage()]
    assert alerts == [
        "operator alert: SMS provider switched to primotexto (brevo: 2 of 11 sends failed or slow)"
    ]

    # The two bad ones: a 5xx proved Brevo did not take it, so its retry goes to Primotexto;
    # a slow one was sent; a timed-out one is looked up at Brevo (which has it), never sent
    # to Primotexto.
    outbox.dispatch_due(session_factory, channels, now=T0 + timedelta(minutes=2))
    once = _count_once(keys, _received(brevo, primotexto))
    assert once == dict.fromkeys(keys, 1)
    with session_factory() as session:
        messages = {m.idempotency_key: m for m in session.scalars(select(OutboxMessage))}
        by_provider = counts_by_provider(session)
    assert {m.status for m in messages.values()} == {OutboxStatus.SENT}
    retried_on = "primotexto" if fault == "5xx" else "brevo"
    assert messages["m3"].sms_provider == retried_on
    assert messages["m11"].sms_provider == retried_on
    expected_brevo = 11 if fault != "5xx" else 9
    assert len(brevo.sent) == expected_brevo
    assert len(primotexto.sent) == 13 - expected_brevo
    assert by_provider == {
        "brevo": (expected_brevo, 0),
        "primotexto": (13 - expected_brevo, 0),
    }
    # Each message's id is the one its provider gave.
    for message in messages.values():
        if message.sms_provider == "primotexto":
            assert message.provider_message_id is not None
            assert message.provider_message_id.startswith("primotexto:")
        else:
            assert message.provider_message_id in {e["messageId"] for e in brevo.sent}


def test_back_to_the_primary_after_a_healthy_probation_and_not_during_it(
    session_factory: sessionmaker[Session],
    brevo: BrevoSmsApi,
    primotexto: PrimotextoSmsApi,
) -> None:
    channels = _channels(brevo, primotexto)
    brevo.next_statuses = [500] * 10
    for number in range(10):  # ten 5xx in a row
        _send(session_factory, channels, f"down{number}", T0 + timedelta(seconds=number))
    # The next message's claim judges Brevo: switched.
    switched_at = T0 + timedelta(seconds=10)
    first = _send(session_factory, channels, "first", switched_at)
    assert first.sms_provider == "primotexto"
    with session_factory() as session:
        assert state(session, "brevo").active == "primotexto"

    # During the probation (10 minutes), everything goes to Primotexto.
    during = [
        _send(
            session_factory, channels, f"during{n}", switched_at + timedelta(minutes=5, seconds=n)
        )
        for n in range(5)
    ]
    assert {message.sms_provider for message in during} == {"primotexto"}

    # After it, the primary is probed (probe_percent 100: every new message); it has
    # recovered; after ten healthy probes it is active again, and stays so.
    after = switched_at + POLICY.probation + timedelta(seconds=1)
    probes = [
        _send(session_factory, channels, f"probe{n}", after + timedelta(seconds=n))
        for n in range(10)
    ]
    assert {message.sms_provider for message in probes} == {"brevo"}
    # The next claim judges the probes: Brevo is active again.
    later = _send(session_factory, channels, "later", after + timedelta(minutes=1))
    assert later.sms_provider == "brevo"
    with session_factory() as session:
        current = state(session, "brevo")
    assert (current.active, current.switches) == ("brevo", 2)

    # The ten that met the 5xx are retried through Brevo, active again; nothing twice.
    outbox.dispatch_due(session_factory, channels, now=after + timedelta(minutes=5))
    keys = [f"down{n}" for n in range(10)] + ["first"] + [f"during{n}" for n in range(5)]
    keys += [f"probe{n}" for n in range(10)] + ["later"]
    assert _count_once(keys, _received(brevo, primotexto)) == dict.fromkeys(keys, 1)
    assert len(brevo.sent) == 21 and len(primotexto.sent) == 6


def test_failing_probes_restart_the_probation(
    session_factory: sessionmaker[Session],
    brevo: BrevoSmsApi,
    primotexto: PrimotextoSmsApi,
) -> None:
    channels = _channels(brevo, primotexto)
    brevo.next_statuses = [500] * 20
    for number in range(10):
        _send(session_factory, channels, f"down{number}", T0 + timedelta(seconds=number))
    assert _send(session_factory, channels, "first", T0 + timedelta(seconds=10)).sms_provider == (
        "primotexto"
    )
    after = T0 + timedelta(seconds=10) + POLICY.probation + timedelta(seconds=1)
    for n in range(10):
        _send(session_factory, channels, f"probe{n}", after + timedelta(seconds=n))
    probed = {_attempted_at(brevo, primotexto, f"probe{n}") for n in range(10)}
    assert probed == {"brevo"}  # probed, and failed (5xx)
    # Still down: not switched back, and the next messages go to Primotexto again until the
    # new probation ends.
    nxt = _send(session_factory, channels, "next", after + timedelta(seconds=30))
    assert nxt.sms_provider == "primotexto"
    with session_factory() as session:
        assert state(session, "brevo") == state(session, "brevo").__class__("primotexto", 1)


def test_a_text_primotexto_cannot_carry_stays_on_brevo(
    session_factory: sessionmaker[Session],
    brevo: BrevoSmsApi,
    primotexto: PrimotextoSmsApi,
) -> None:
    channels = _channels(brevo, primotexto)
    brevo.next_statuses = [500] * 10
    for number in range(10):
        _send(session_factory, channels, f"down{number}", T0 + timedelta(seconds=number))
    arabic = _send(
        session_factory, channels, "ar", T0 + timedelta(minutes=1), text="موعدك غدا الساعة 10"
    )
    assert arabic.sms_provider == "brevo"
    assert arabic.status is OutboxStatus.SENT
    assert primotexto.calls == [] or all(
        call.payload["message"] != "موعدك غدا الساعة 10" for call in primotexto.calls
    )


# --- SIGKILL across a failover ----------------------------------------------------------

SCHEMA = "sms_failover_crash"
MESSAGES = 30
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'failover.sqlite3'}"
    else:
        url = postgres_schema_url(SCHEMA, needed_for="the PostgreSQL failover crash test")
    engine = create_database_engine(url)
    upgrade_to_head(engine)
    yield url, engine
    engine.dispose()


def _run(url: str, brevo: BrevoSmsApi, primotexto: PrimotextoSmsApi, now: datetime) -> ForkedCli:
    """`paris-avenir outbox dispatch` in its own process, with both providers configured as
    in production (failover, Brevo first), thresholds shortened."""
    environment = {
        "PARIS_AVENIR_DATABASE_URL": url,
        "PARIS_AVENIR_SMS_BACKEND": "failover",
        "PARIS_AVENIR_SMS_API_URL": brevo.url,
        "PARIS_AVENIR_SMS_API_KEY": BrevoSmsApi.API_KEY,
        "PARIS_AVENIR_PRIMOTEXTO_API_URL": primotexto.url,
        "PARIS_AVENIR_PRIMOTEXTO_API_KEY": PrimotextoSmsApi.API_KEY,
        "PARIS_AVENIR_SMS_FAILOVER_MIN_SENDS": "4",
        "PARIS_AVENIR_SMS_FAILOVER_PROBATION_SECONDS": "3600",
        "PARIS_AVENIR_SMTP_URL": "smtp://127.0.0.1:9",
    }
    return forked_cli(environment, "outbox", "dispatch", "--now", now.isoformat())


def _kill_after(run: ForkedCli, sent: Sequence[object], count: int) -> None:
    deadline = time.monotonic() + 60
    while len(sent) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(sent) >= count, run.wait(timeout=5)
    os.kill(run.pid, signal.SIGKILL)
    returncode, _err = run.wait(timeout=10)
    assert returncode == -signal.SIGKILL


def _finish(run: ForkedCli) -> None:
    returncode, err = run.wait(timeout=120)
    assert returncode == 0, err


def test_sigkill_mid_send_on_either_side_of_a_failover_sends_each_message_once(
    database: tuple[str, Engine], brevo: BrevoSmsApi, primotexto: PrimotextoSmsApi
) -> None:
    url, engine = database
    factory = sessionmaker(bind=engine)
    keys = [f"crash-{number}" for number in range(MESSAGES)]
    with factory.begin() as session:
        for number, key in enumerate(keys):
            outbox.enqueue(
                session,
                channel=Channel.SMS,
                recipient=f"+3361234{number:04d}",
                template="crash_test",
                body_text=f"Message {number}",
                idempotency_key=key,
                now=NOW - timedelta(minutes=1),
            )
    engine.dispose()  # the children start with no connection of ours

    # 1. Killed mid-send on Brevo (the SMS have left, the answers are slow).
    brevo.response_delay = 0.3
    _kill_after(_run(url, brevo, primotexto, NOW), brevo.sent, 8)
    time.sleep(brevo.response_delay + 0.2)
    on_brevo_at_kill = len(brevo.sent)

    # 2. Brevo now answers 500 to every send: the rest fail there (nothing taken).
    brevo.response_delay = 0.0
    brevo.next_statuses = [500] * 1000
    _finish(_run(url, brevo, primotexto, NOW + timedelta(seconds=30)))
    assert len(brevo.sent) == on_brevo_at_kill

    # 3. Their retries: Brevo is over the threshold, Primotexto takes them — killed again,
    # mid-send on Primotexto this time.
    primotexto.response_delay = 0.3
    _kill_after(_run(url, brevo, primotexto, NOW + timedelta(seconds=90)), primotexto.sent, 4)
    time.sleep(primotexto.response_delay + 0.2)
    with factory() as session:
        assert state(session, "brevo").active == "primotexto"
        interrupted = Counter(
            session.scalars(
                select(OutboxMessage.sms_provider).where(
                    OutboxMessage.status == OutboxStatus.SENDING
                )
            )
        )
    # Both kills left messages in `sending`, tied to the provider they were handed to.
    assert interrupted["brevo"] >= 1 and interrupted["primotexto"] >= 1

    # 4. Restarted once the leases are over (Brevo healthy again, but Primotexto is the
    # active one): each interrupted message is looked up where it went; what never arrived
    # is sent once, through Primotexto.
    primotexto.response_delay = 0.0
    brevo.next_statuses = []
    later = NOW + timedelta(seconds=90) + outbox.SENDING_LEASE + timedelta(minutes=1)
    for step in range(3):
        _finish(_run(url, brevo, primotexto, later + timedelta(minutes=step)))

    received = _received(brevo, primotexto)
    assert _count_once(keys, received) == dict.fromkeys(keys, 1)  # none lost, none twice
    assert sum(received.values()) == MESSAGES
    with factory() as session:
        messages = session.scalars(select(OutboxMessage)).all()
        assert {message.status for message in messages} == {OutboxStatus.SENT}
        brevo_ids = {str(event["messageId"]) for event in brevo.sent}
        for message in messages:
            if message.sms_provider == "brevo":
                assert message.provider_message_id in brevo_ids
            else:
                assert message.sms_provider == "primotexto"
                assert str(message.provider_message_id).startswith("primotexto:")
        assert Counter(message.sms_provider for message in messages) == {
            "brevo": len(brevo.sent),
            "primotexto": len(primotexto.sent),
        }
        recovered = session.scalars(
            select(OutboxMessage.sms_provider)
            .join(OutboxStatusEvent, OutboxStatusEvent.outbox_message_id == OutboxMessage.id)
            .where(OutboxStatusEvent.detail == "found at the provider: not sent again")
        ).all()
        # Looked up at each provider after its kill, and found there: not sent again.
        assert {"brevo", "primotexto"} <= set(recovered)
        # Claimed ahead at Brevo but never sent before the kill: Brevo said "never got it",
        # so they moved to Primotexto (asked there too before leaving).
        moved = session.scalars(
            select(OutboxStatusEvent.detail).where(
                OutboxStatusEvent.detail == "not at brevo: moves to primotexto"
            )
        ).all()
        assert moved
        assert state(session, "brevo").switches == 1


def test_metrics_show_the_active_provider_the_switches_and_sends_per_provider(
    session_factory: sessionmaker[Session],
    brevo: BrevoSmsApi,
    primotexto: PrimotextoSmsApi,
    settings: Settings,
) -> None:
    channels = _channels(brevo, primotexto)
    collector = DatabaseCollector(
        session_factory, settings.model_copy(update={"sms_backend": "failover"})
    )

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in collector.collect()
            for sample in family.samples
        }

    before = samples()
    assert before[("paris_avenir_sms_provider_active", (("provider", "brevo"),))] == 1
    assert before[("paris_avenir_sms_failover_switches", ())] == 0

    for number in range(3):
        _send(session_factory, channels, f"ok{number}", T0 + timedelta(seconds=number))
    brevo.next_statuses = [500] * 10
    for number in range(10):
        _send(session_factory, channels, f"down{number}", T0 + timedelta(seconds=10 + number))
    _send(session_factory, channels, "after", T0 + timedelta(seconds=30))
    # When "down7" was claimed, Brevo had ten sends in the window, seven of them 5xx: it,
    # the last two and "after" went through Primotexto.

    after = samples()
    assert after[("paris_avenir_sms_provider_active", (("provider", "brevo"),))] == 0
    assert after[("paris_avenir_sms_provider_active", (("provider", "primotexto"),))] == 1
    assert after[("paris_avenir_sms_failover_switches", ())] == 1
    assert after[("paris_avenir_sms_sent_by_provider", (("provider", "brevo"),))] == 3
    assert after[("paris_avenir_sms_sent_by_provider", (("provider", "primotexto"),))] == 4


def test_forty_dispatchers_judging_at_once_switch_once(
    brevo: BrevoSmsApi, primotexto: PrimotextoSmsApi, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL, 40 claims in parallel transactions, each seeing Brevo over the threshold:
    one switch (the compare-and-set), and every one of them then sends through Primotexto."""
    url = postgres_schema_url("sms_failover_race", needed_for="the failover race")
    engine = create_database_engine(url, pool_size=40, max_overflow=0)
    upgrade_to_head(engine)
    factory = sessionmaker(bind=engine)
    router = _channels(brevo, primotexto).sms
    assert isinstance(router, SmsFailover)
    with factory.begin() as session:
        router.record(session, [Sample("brevo", False, 0.01)] * 10, T0)
    barrier = threading.Barrier(40)

    def judge(_index: int) -> str:
        with factory.begin() as session:
            barrier.wait(timeout=30)
            return router.routing(session, T0 + timedelta(seconds=1)).active

    try:
        with caplog.at_level(logging.ERROR), ThreadPoolExecutor(max_workers=40) as pool:
            chosen = list(pool.map(judge, range(40)))
        with factory() as session:
            current = state(session, "brevo")
    finally:
        engine.dispose()
    assert chosen == ["primotexto"] * 40
    assert (current.active, current.switches) == ("primotexto", 1)
    assert sum("switched" in record.getMessage() for record in caplog.records) == 1
