"""How fast the outbox leaves, and whether a slow provider reaches the sign-in page: issue
17 part 4, on SQLite and (when PARIS_AVENIR_TEST_DATABASE_URL is set) PostgreSQL.

    .venv/bin/python bench/sending.py [--messages 2000] [--serial-messages 200]
        [--email-messages 500] [--concurrency 1 8 16] [--latency 0.05]
        [--backends sqlite postgresql] [--no-email] [--no-sign-in]

1. Throughput. `--messages` SMS are queued in a fresh database (`--serial-messages` for a
   concurrency of 1, which would otherwise take minutes), then the scheduler's own job
   (`scheduler.dispatch_outbox`: `outbox.dispatch_due` batch after batch, as `serve` runs
   it) sends them through the real Brevo adapter to the Brevo stub of tests/servers.py on
   loopback, every answer `--latency` seconds late. For each concurrency
   (Settings.send_concurrency): messages per second, the ceiling concurrency / latency and
   the share of it reached, the database transactions and statements per message, and the
   ratio to a concurrency of 1 ("statements" are cursor executions: a batched executemany
   counts once). The same for at most `--email-messages` emails through SMTP (aiosmtpd,
   each message's DATA answered `--latency` late; a connection per message), unless
   `--no-email`.
2. Sign-in off the request path. A real server (uvicorn on loopback) whose SMS provider
   answers in `--slow-provider` seconds (2 by default): youths ask for a code one after the
   other; the time of their POST /connexion with the provider quick and slow, and how long
   after the request the provider received the code (the OutboxWorker's threads send it).

Uses (and empties) the schemas `bench_sending` and `bench_sending_web` of the PostgreSQL
database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, event, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.servers, tests.schemas

import paris_avenir.models  # noqa: F401 (every table, for the ORM)
from paris_avenir import scheduler
from paris_avenir.app import create_app
from paris_avenir.auth import codes
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.youths.models import Channel, Youth
from tests.schemas import fresh_schema_url
from tests.servers import BrevoSmsApi, PlatformServer, SmtpServer


@dataclass
class Run:
    concurrency: int
    messages: int
    seconds: float
    transactions: int
    statements: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def fresh_engine(backend: str, base: str | None, directory: Path, label: str) -> Engine:
    if backend == "sqlite":
        url = f"sqlite:///{directory / f'{label}.sqlite3'}"
    else:
        assert base
        url = fresh_schema_url(base, "bench_sending_web" if label == "web" else "bench_sending")
    engine = create_database_engine(url, pool_size=20, max_overflow=30)
    upgrade_to_head(engine)
    return engine


def queue(engine: Engine, channel: Channel, count: int) -> None:
    factory = make_session_factory(engine)
    with factory.begin() as session:
        for start in range(0, count, 1000):
            outbox.enqueue_many(
                session,
                [
                    {
                        "channel": channel,
                        "recipient": (
                            f"+3367{number:07d}"
                            if channel is Channel.SMS
                            else f"jeune{number}@example.org"
                        ),
                        "template": "bench",
                        "subject": "Paris avenir" if channel is Channel.EMAIL else None,
                        "body_text": "Bonjour, votre rendez-vous est confirmé.",
                        "idempotency_key": f"bench:{channel.value}:{number}",
                        # Sent whatever the hour the bench runs at.
                        "respects_quiet_hours": False,
                    }
                    for number in range(start, min(start + 1000, count))
                ],
            )


def dispatch(engine: Engine, channels: Channels, count: int) -> Run:
    transactions = statements = 0

    def on_begin(_connection: Any) -> None:
        nonlocal transactions
        transactions += 1

    def on_statement(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "before_cursor_execute", on_statement)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    scheduler.dispatch_outbox(factory, channels)
    seconds = time.perf_counter() - started
    event.remove(engine, "begin", on_begin)
    event.remove(engine, "before_cursor_execute", on_statement)
    with factory() as session:
        sent = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.SENT)
        )
    if sent != count:
        raise RuntimeError(f"{sent} of {count} sent")
    return Run(channels.send_concurrency, count, seconds, transactions, statements)


class _SlowSmtpHandler:
    def __init__(self, inner: Any, latency: float) -> None:
        self.inner, self.latency = inner, latency

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.latency)
        result: str = await self.inner.handle_DATA(server, session, envelope)
        return result


def throughput(
    backend: str, base: str | None, directory: Path, arguments: argparse.Namespace
) -> None:
    latency = arguments.latency
    sms_api = BrevoSmsApi()
    sms_api.response_delay = latency
    sms_api.start()
    smtp = SmtpServer()
    smtp.start()
    assert smtp._controller is not None
    smtp._controller.handler = _SlowSmtpHandler(smtp._controller.handler, latency)
    channels_to_run = [Channel.SMS] if arguments.no_email else [Channel.SMS, Channel.EMAIL]
    try:
        for channel in channels_to_run:
            runs: list[Run] = []
            for concurrency in arguments.concurrency:
                count = arguments.serial_messages if concurrency == 1 else arguments.messages
                if channel is Channel.EMAIL:
                    count = min(count, arguments.email_messages)
                engine = fresh_engine(backend, base, directory, f"{channel.value}-{concurrency}")
                queue(engine, channel, count)
                channels = Channels(
                    sms=BrevoSmsSender(
                        api_url=sms_api.url, api_key=BrevoSmsApi.API_KEY, sender="ParisAvenir"
                    ),
                    email=SmtpEmailSender(smtp.url, sender="ne-pas-repondre@example.org"),
                    send_concurrency=concurrency,
                )
                runs.append(dispatch(engine, channels, count))
                engine.dispose()
                run = runs[-1]
                ceiling = concurrency / latency
                print(
                    f"{backend:10s} {channel.value:5s} concurrency {concurrency:2d}:"
                    f" {run.messages:5d} in {run.seconds:6.1f} s = {run.rate:6.1f} msg/s"
                    f" (ceiling {ceiling:5.0f}/s, {run.rate / ceiling:4.0%});"
                    f" {run.transactions / run.messages:.2f} transactions,"
                    f" {run.statements / run.messages:.1f} statements per message",
                    flush=True,
                )
            serial = next((run for run in runs if run.concurrency == 1), None)
            if serial:
                ratios = ", ".join(
                    f"{run.concurrency} vs 1: x{run.rate / serial.rate:.1f}"
                    for run in runs
                    if run.concurrency != 1
                )
                print(f"{backend:10s} {channel.value:5s} ratios: {ratios}", flush=True)
    finally:
        sms_api.stop()
        smtp.stop()
    if not arguments.no_email:
        assert len(smtp.inbox) == sum(
            min(
                arguments.serial_messages if c == 1 else arguments.messages,
                arguments.email_messages,
            )
            for c in arguments.concurrency
        )


def sign_in_latency(
    backend: str, base: str | None, directory: Path, arguments: argparse.Namespace
) -> None:
    count = arguments.sign_ins
    engine = fresh_engine(backend, base, directory, "web")
    phones = [f"+3363998{7000 + number:04d}" for number in range(2 * count)]
    with make_session_factory(engine).begin() as session:
        for number, phone in enumerate(phones):
            session.add(
                Youth(
                    ase_ref=f"SENDING-{number:05d}",
                    first_name="Camille",
                    last_name=f"Mesure{number}",
                    birth_date=date(2005, 3, 14),
                    phone=phone,
                )
            )
    # Every request comes from the loopback address: its limit is not what is measured.
    codes.IP_LIMITS = ((codes.IP_LIMITS[0][0], 100 * count), (codes.IP_LIMITS[1][0], 100 * count))
    sms_api = BrevoSmsApi()
    sms_api.start()
    settings = Settings(
        env="dev",
        secret_key="bench-sending-secret-" + "x" * 32,
        database_url=f"sqlite:///{directory / 'unused.sqlite3'}",
        sms_backend="http",
        sms_api_url=sms_api.url,
        sms_api_key=BrevoSmsApi.API_KEY,
        upload_dir=directory / "uploads",
        smtp_url="smtp://127.0.0.1:9",
    )
    server = PlatformServer(create_app(settings, engine=engine))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            token = re.search(r'"x-csrftoken": "([^"]+)"', client.get("/connexion").text)
            assert token
            results: dict[str, tuple[list[float], list[float]]] = {}
            for label, delay, numbers in (
                ("quick", 0.0, phones[:count]),
                ("slow", arguments.slow_provider, phones[count:]),
            ):
                sms_api.response_delay = delay
                posts: list[float] = []
                reached: list[float] = []
                for phone in numbers:
                    client.cookies.delete("tentative_connexion")
                    before = len(sms_api.calls)
                    started = time.perf_counter()
                    at = time.monotonic()
                    answer = client.post(
                        "/connexion", data={"csrftoken": token.group(1), "destination": phone}
                    )
                    posts.append(time.perf_counter() - started)
                    assert answer.status_code == 303, answer.status_code
                    deadline = time.monotonic() + 10
                    while len(sms_api.calls) == before and time.monotonic() < deadline:
                        time.sleep(0.002)
                    reached.append(sms_api.calls[-1].at - at)
                results[label] = (posts, reached)
            sms_api.response_delay = 0
        for label, (posts, reached) in results.items():
            posts.sort()
            delay = 0.0 if label == "quick" else arguments.slow_provider
            print(
                f"{backend:10s} sign-in, provider answering in {delay:.1f} s: POST /connexion"
                f" median {statistics.median(posts) * 1000:.0f} ms,"
                f" p90 {posts[int(len(posts) * 0.9)] * 1000:.0f} ms,"
                f" max {posts[-1] * 1000:.0f} ms; code at the provider"
                f" {statistics.median(reached) * 1000:.0f} ms after the request (median)",
                flush=True,
            )
        quick = statistics.median(results["quick"][0])
        slow = statistics.median(results["slow"][0])
        print(f"{backend:10s} sign-in: slow provider vs quick, median POST x{slow / quick:.2f}")
    finally:
        server.stop()
        sms_api.stop()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--serial-messages", type=int, default=200)
    parser.add_argument("--email-messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--slow-provider", type=float, default=2.0)
    parser.add_argument("--sign-ins", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--no-email", action="store_true")
    parser.add_argument("--no-sign-in", action="store_true")
    arguments = parser.parse_args()
    base = os.environ.get("PARIS_AVENIR_TEST_DATABASE_URL")
    backends = [name for name in arguments.backends if name == "sqlite" or base]
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        for backend in backends:
            throughput(backend, base, directory, arguments)
            if not arguments.no_sign_in:
                sign_in_latency(backend, base, directory, arguments)


if __name__ == "__main__":
    main()
