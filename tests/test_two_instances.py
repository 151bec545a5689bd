"""Two instances behind Debian's nginx on one PostgreSQL, as a city runs them.

Each instance is a real `paris-avenir serve --workers 2` process started with the Docker
image's own command (Dockerfile CMD, only the address and port changed), so each has two
web workers and a scheduler process of its own: two schedulers race on one database. nginx
runs deploy/nginx.conf itself (addresses, ports, certificate and file paths rewritten), over
TLS, with the instances in prod mode (__Host- session cookie, HTTPS only).

For a few seconds youths sign in with the code the SMS provider (a Brevo stub) received,
load their pages, visitors load public pages, a référent opens files and writes notes, while
both schedulers run an outreach cycle and dispatch the outbox. Then: no 5xx anywhere, both
instances answered (nginx's own log says which), a session opened through one instance
works on the other, every message was sent exactly once, and the instances saw each
client's own address through X-Forwarded-For.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.config import PROJECT_ROOT, Settings
from paris_avenir.db import create_database_engine, utcnow
from paris_avenir.kit.crypto import configure_at_rest
from paris_avenir.messaging import outbox
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.web.middleware import MAX_REQUEST_BYTES
from paris_avenir.youths.models import Channel, FollowUpNote, Youth
from tests.conftest import postgres_schema_url, skip_or_fail
from tests.factories import assign, create_staff, create_youth
from tests.helpers import CODE_IN_TEXT
from tests.servers import BrevoSmsApi, SmtpServer, free_port

pytestmark = pytest.mark.wall_clock  # the instances and nginx live on the machine's clock

SCHEMA = "two_instances"
NGINX_CONF = PROJECT_ROOT / "deploy" / "nginx.conf"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
LOAD_SECONDS = 6.0
SIGNING_IN = 12  # youths who sign in with a code during the load
QUIET = 30  # youths the watch contacts (inactive 31 days: the first SMS is due)
SECRET_KEY = "two-instances-secret-" + "x" * 32
METRICS_TOKEN = "two-instances-metrics-" + "m" * 32
ENCRYPTION_KEY = Fernet.generate_key().decode()
CLIENT_NETWORK = "127.0.7.0/24"  # where the test's browsers connect from (nginx: 127.0.0.1)


def docker_command() -> list[str]:
    """The Dockerfile's CMD (exec form), as the image starts an instance."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, "one CMD in the Dockerfile"
    command = json.loads(lines[0].removeprefix("CMD "))
    assert isinstance(command, list) and command[:2] == ["paris-avenir", "serve"]
    return [str(part) for part in command]


def _with_option(command: list[str], option: str, value: str) -> list[str]:
    assert option in command, f"the Dockerfile's command sets {option}"
    index = command.index(option)
    return [*command[: index + 1], value, *command[index + 2 :]]


def instance_command(port: int) -> list[str]:
    """The Docker command on loopback: only --host and --port differ."""
    command = _with_option(
        _with_option(docker_command(), "--host", "127.0.0.1"), "--port", str(port)
    )
    # The console script of this environment (the image's is on its PATH).
    return [str(Path(sys.executable).parent / command[0]), *command[1:]]


def _rewrite(text: str, pattern: str, replacement: str | Callable[[re.Match[str]], str]) -> str:
    """One change to deploy/nginx.conf; the line must be there (the test follows the file)."""
    changed, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count, f"deploy/nginx.conf has no line matching {pattern!r}"
    return changed


def nginx_config(prefix: Path, https_port: int, http_port: int, upstreams: list[int]) -> str:
    text = NGINX_CONF.read_text()
    # Run by the test's user, as a child of the test, files under its prefix.
    # Its workers write the static cache under the prefix: they run as the test's user.
    text = _rewrite(text, r"^user .*;", f"user {pwd.getpwuid(os.getuid()).pw_name};")
    text = _rewrite(text, r"^pid .*;", f"pid {prefix}/nginx.pid;")
    text = _rewrite(text, r"^error_log \S+", f"error_log {prefix}/error.log")
    text = _rewrite(text, r"access_log \S+ avenir;", f"access_log {prefix}/access.log avenir;")
    text = _rewrite(text, r"proxy_cache_path \S+", f"proxy_cache_path {prefix}/cache")
    text = _rewrite(
        text,
        r"^http \{",
        "http {\n"
        + "".join(
            f"    {kind}_temp_path {prefix}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    )
    # The two instances of the upstream are the test's.
    servers = iter(upstreams)
    text = _rewrite(
        text, r"server 10\.0\.0\.1[12]:8000", lambda _m: f"server 127.0.0.1:{next(servers)}"
    )
    text = _rewrite(text, r"^\s*listen \[::\]:\d+.*;\n", "")
    text = _rewrite(text, r"listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _rewrite(text, r"listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    text = _rewrite(text, r"ssl_certificate \S+;", f"ssl_certificate {prefix}/cert.pem;")
    text = _rewrite(text, r"ssl_certificate_key \S+;", f"ssl_certificate_key {prefix}/key.pem;")
    return text


def write_certificate(prefix: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (the test's browsers trust it, nothing else)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = prefix / "cert.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (prefix / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited ({process.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {seconds} s: {log.read_text()[-2000:]}")


def _wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    _wait_for_port(port, process, log, seconds=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"/healthz never answered on {port}: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes], how: int = signal.SIGTERM) -> None:
    """The signal Docker sends; then the whole group, should anything be left."""
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session)


@dataclass
class People:
    referent_id: uuid.UUID
    staff_token: str
    phones: list[str]  # the youths who sign in
    youth_ids: list[str]


def seed(factory: sessionmaker[Session]) -> People:
    """Before the instances start (each scheduler runs a cycle as it starts): a référent,
    youths who will sign in, and youths quiet for 31 days, whose first SMS is due."""
    now = dt.datetime.now(dt.UTC)
    with factory.begin() as session:
        referent = create_staff(session)
        phones: list[str] = []
        youth_ids: list[str] = []
        for _index in range(SIGNING_IN):
            youth = create_youth(
                session, activated_at=now - dt.timedelta(days=100), last_activity_at=now
            )
            assign(session, youth, referent)
            phones.append(youth.phone or "")
            youth_ids.append(str(youth.id))
        for number in range(QUIET):
            youth = create_youth(
                session,
                activated_at=now - dt.timedelta(days=300),
                last_activity_at=now - dt.timedelta(days=31, hours=number % 5),
            )
            assign(session, youth, referent)
        staff_token = sessions.start_session(
            session, staff_id=referent.id, method=AuthMethod.PASSWORD_TOTP
        ).token
    return People(referent.id, staff_token, phones, youth_ids)


@dataclass
class Stack:
    url: str  # nginx, HTTPS
    http_url: str  # nginx, plain HTTP
    instances: dict[str, int]  # "127.0.0.1:port" -> port
    certificate: Path
    access_log: Path
    instance_logs: list[Path]
    sms_api: BrevoSmsApi
    factory: sessionmaker[Session]
    settings: Settings
    people: People
    metrics_directories: dict[int, Path]  # port -> PROMETHEUS_MULTIPROC_DIR
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        skip_or_fail("Debian's nginx is needed for the two-instances test")
    url = postgres_schema_url(SCHEMA, needed_for="two instances behind nginx")
    engine: Engine = create_database_engine(url)
    upgrade_to_head(engine)
    https_port, http_port = free_port(), free_port()
    settings = Settings(
        env="prod",
        secret_key=SECRET_KEY,
        encryption_keys=ENCRYPTION_KEY,
        base_url=f"https://127.0.0.1:{https_port}",
    )
    configure_at_rest(settings, engine)  # the test writes the rows the instances read
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    people = seed(factory)
    sms_api = BrevoSmsApi()
    smtp = SmtpServer()
    sms_api.start()
    smtp.start()
    ports = [free_port(), free_port()]
    environment = {key: value for key, value in os.environ.items()}
    for key in [key for key in environment if key.startswith("PARIS_AVENIR_")]:
        if key != "PARIS_AVENIR_LOG_FILE":  # tests/log_privacy.py reads the children's logs
            del environment[key]
    environment |= {
        "PARIS_AVENIR_ENV": "prod",
        "PARIS_AVENIR_SECRET_KEY": SECRET_KEY,
        "PARIS_AVENIR_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "PARIS_AVENIR_DATABASE_URL": url,
        "PARIS_AVENIR_BASE_URL": settings.base_url,
        "PARIS_AVENIR_TRUSTED_PROXIES": "127.0.0.1",
        "PARIS_AVENIR_SMS_BACKEND": "http",
        "PARIS_AVENIR_SMS_API_URL": sms_api.url,
        "PARIS_AVENIR_SMS_API_KEY": BrevoSmsApi.API_KEY,
        "PARIS_AVENIR_SMTP_URL": smtp.url,
        "PARIS_AVENIR_UPLOAD_DIR": str(tmp_path / "uploads"),
        # Both schedulers pass over the outbox every second during the load.
        "PARIS_AVENIR_OUTBOX_INTERVAL_SECONDS": "1",
        "PARIS_AVENIR_METRICS_TOKEN": METRICS_TOKEN,
    }
    processes: list[subprocess.Popen[bytes]] = []
    proxy: subprocess.Popen[bytes] | None = None
    logs = [tmp_path / f"instance-{index}.log" for index in range(2)]
    # Where each instance's workers share their request counts (the operator's setting:
    # serve empties it and leaves it, so the test can see which workers counted).
    shared = [tmp_path / f"metrics-{index}" for index in range(2)]
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    try:
        for port, log, directory in zip(ports, logs, shared, strict=True):
            with log.open("wb") as output:
                processes.append(
                    subprocess.Popen(  # the Docker image's own command
                        instance_command(port),
                        env=environment | {"PROMETHEUS_MULTIPROC_DIR": str(directory)},
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        certificate = write_certificate(prefix)
        (prefix / "nginx.conf").write_text(nginx_config(prefix, https_port, http_port, ports))
        nginx_log = prefix / "stderr.log"
        with nginx_log.open("wb") as output:
            proxy = subprocess.Popen(
                [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(proxy)
        _wait_for_port(https_port, proxy, nginx_log, seconds=10)
        for port, process, log in zip(ports, processes[:2], logs, strict=True):
            _wait_healthy(port, process, log)
        yield Stack(
            url=f"https://127.0.0.1:{https_port}",
            http_url=f"http://127.0.0.1:{http_port}",
            instances={f"127.0.0.1:{port}": port for port in ports},
            metrics_directories=dict(zip(ports, shared, strict=True)),
            certificate=certificate,
            access_log=prefix / "access.log",
            instance_logs=logs,
            sms_api=sms_api,
            factory=factory,
            settings=settings,
            people=people,
            processes=processes,
        )
    finally:
        # nginx first (SIGQUIT: its graceful stop), then the instances as Docker stops them.
        for process in reversed(processes):
            _stop(process, signal.SIGQUIT if process is proxy else signal.SIGTERM)
        sms_api.stop()
        smtp.stop()
        engine.dispose()


@dataclass
class Answer:
    who: str
    method: str
    path: str
    status: int
    request_id: str


class Browser:
    """One person's browser, through nginx over TLS, from an address of its own."""

    def __init__(self, stack: Stack, who: str, address: str, answers: list[Answer]) -> None:
        context = ssl.create_default_context(cafile=str(stack.certificate))
        transport = httpx.HTTPTransport(local_address=address, verify=context)
        self.client = httpx.Client(
            base_url=stack.url, transport=transport, timeout=30, follow_redirects=False
        )
        self.who, self.answers = who, answers
        self.csrf = ""

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        self.answers.append(
            Answer(
                self.who,
                method,
                path,
                response.status_code,
                response.headers.get("x-request-id", ""),
            )
        )
        token = re.search(r'"x-csrftoken": "([^"]+)"', response.text)
        if token:
            self.csrf = token.group(1)
        return response

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.request("POST", path, data={"csrftoken": self.csrf, **data})


def _code_for(stack: Stack, phone: str, seconds: float = 20) -> str:
    """The code in the SMS the provider received for this phone (the first; one is sent)."""
    deadline = time.monotonic() + seconds
    recipient = phone.lstrip("+")
    while time.monotonic() < deadline:
        for call in list(stack.sms_api.calls):
            # Her first SMS may be the watch's check-in ("tout va bien ?"), not the code.
            code = CODE_IN_TEXT.search(str(call.payload["content"]))
            if call.payload.get("recipient") == recipient and code:
                return code.group(1)
        time.sleep(0.05)
    raise AssertionError("no code reached the SMS provider")


def sign_in_and_browse(stack: Stack, index: int, phone: str, answers: list[Answer]) -> str:
    """A youth asks for a code, types the one received, then uses her space; returns the
    session cookie."""
    browser = Browser(stack, f"youth-{index}", f"127.0.7.{10 + index}", answers)
    assert browser.request("GET", "/connexion").status_code == 200
    asked = browser.post("/connexion", {"destination": phone})
    assert asked.status_code == 303, asked.text[:300]
    assert browser.request("GET", "/connexion/code").status_code == 200
    signed_in = browser.post("/connexion/code", {"code": _code_for(stack, phone)})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/mon-espace"
    for _page in range(4):
        assert browser.request("GET", "/mon-espace").status_code == 200
    cookie = browser.client.cookies.get(stack.settings.session_cookie_name)
    assert cookie
    return cookie


def visit_public_pages(stack: Stack, index: int, until: float, answers: list[Answer]) -> int:
    browser = Browser(stack, f"visitor-{index}", f"127.0.7.{100 + index}", answers)
    count = 0
    while time.monotonic() < until:
        for path in ("/", "/connexion", "/healthz"):
            assert browser.request("GET", path).status_code == 200
            count += 1
    return count


def referent_at_work(
    stack: Stack, token: str, youths: list[str], until: float, answers: list[Answer]
) -> int:
    """A référent goes from file to file and writes a note in each; returns the notes."""
    browser = Browser(stack, "referent", "127.0.7.200", answers)
    browser.client.cookies.set(stack.settings.session_cookie_name, token)
    notes = 0
    while time.monotonic() < until:
        for youth_id in youths:
            assert browser.request("GET", "/pro").status_code == 200
            assert browser.request("GET", f"/pro/jeunes/{youth_id}").status_code == 200
            noted = browser.post(f"/pro/jeunes/{youth_id}/notes", {"note": f"Appel {notes}"})
            assert noted.status_code == 303, noted.text[:300]
            notes += 1
            if time.monotonic() >= until:
                break
    return notes


def _nginx_log(stack: Stack) -> list[dict[str, str]]:
    entries = []
    for line in stack.access_log.read_text().splitlines():
        match = re.search(
            r' (?P<id>[0-9a-f]{32}) "(?P<method>\S+) (?P<path>\S+)" (?P<status>\d{3}) .*'
            r"upstream=(?P<upstream>\S+) upstream_status=(?P<upstream_status>\S+)"
            r" cache=(?P<cache>\S+)$",
            line,
        )
        assert match, line
        entries.append(match.groupdict())
    return entries


def _dashboards_counted(port: int) -> float:
    """GET /mon-espace answered by this instance, as its /metrics says (all statuses)."""
    scraped = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert scraped.status_code == 200, scraped.status_code
    return sum(
        sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name == "paris_avenir_http_request_duration_seconds_count"
        and sample.labels["route"] == "/mon-espace"
        and sample.labels["method"] == "GET"
    )


def _each_scrape_counts_every_worker(
    stack: Stack, log: list[dict[str, str]], direct_per_instance: int
) -> None:
    """Prometheus scrapes an instance, and one of its workers answers: the latency series
    must be the instance's (every worker's requests), whichever one it is."""
    routed = Counter(
        entry["upstream"]
        for entry in log
        if entry["method"] == "GET" and entry["path"] == "/mon-espace"
    )
    for address, port in stack.instances.items():
        expected = routed[address] + direct_per_instance
        # A request is counted just after its response: the last ones may still be on
        # their way to the count.
        deadline = time.monotonic() + 5
        while _dashboards_counted(port) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        counted = [_dashboards_counted(port) for _scrape in range(6)]
        assert counted == [expected] * 6, (address, expected, counted)
        # Both workers answered requests of the instance: each wrote its own counts.
        writers = {
            path.stem.rsplit("_", 1)[-1]
            for path in stack.metrics_directories[port].glob("histogram_*.db")
        }
        assert len(writers) == 2, writers


def _wait_until_sent(factory: sessionmaker[Session], seconds: float) -> None:
    """Until no message that may leave now is still waiting (quiet hours hold the rest)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with factory() as session:
            waiting = outbox.oldest_due_wait(session, utcnow())
            sending = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.SENDING)
            )
        if waiting is None and not sending:
            return
        time.sleep(0.2)
    raise AssertionError("messages that may leave were still waiting")


# PostgreSQL only (one database for every process): named so, for the run's count.
@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_instances_behind_nginx_share_sessions_and_send_each_message_once(
    stack: Stack, backend: str
) -> None:
    started = time.monotonic()
    people = stack.people
    referent, phones, youth_ids, staff_token = (
        people.referent_id,
        people.phones,
        people.youth_ids,
        people.staff_token,
    )

    answers: list[Answer] = []
    until = time.monotonic() + LOAD_SECONDS
    with ThreadPoolExecutor(max_workers=SIGNING_IN + 4) as pool:
        visitors = [pool.submit(visit_public_pages, stack, i, until, answers) for i in range(3)]
        staff_work = pool.submit(
            referent_at_work, stack, staff_token, youth_ids[:4], until, answers
        )
        signed_in = [
            pool.submit(sign_in_and_browse, stack, index, phone, answers)
            for index, phone in enumerate(phones)
        ]
        cookies = [future.result() for future in signed_in]
        notes = staff_work.result()
        pages = sum(future.result() for future in visitors)
    load_took = time.monotonic() - started

    # A static file: fetched from an instance once, then from nginx's cache.
    static = Browser(stack, "static", "127.0.7.250", answers)
    home = static.request("GET", "/")
    stylesheet = re.search(r'href="(/static/[0-9a-f]+/[^"]+\.css)"', home.text)
    assert stylesheet
    cache = [static.request("GET", stylesheet.group(1)).headers["x-cache-status"] for _ in "ab"]
    assert cache == ["MISS", "HIT"]
    # Plain HTTP leads to HTTPS.
    plain = httpx.get(stack.http_url + "/connexion")
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")

    # Every session opened through nginx works on each instance directly.
    name = stack.settings.session_cookie_name
    for cookie in cookies:
        for port in stack.instances.values():
            page = httpx.get(
                f"http://127.0.0.1:{port}/mon-espace", headers={"cookie": f"{name}={cookie}"}
            )
            assert page.status_code == 200, page.status_code

    # No 5xx: not to the browsers, not in nginx's log, not from any instance.
    assert answers and not [answer for answer in answers if answer.status >= 500]
    log = _nginx_log(stack)
    assert not [entry for entry in log if entry["status"].startswith("5")]
    assert not [entry for entry in log if entry["upstream_status"].startswith("5")]
    served = Counter(entry["upstream"] for entry in log if entry["upstream"] != "-")
    assert set(served) == set(stack.instances), served
    assert min(served.values()) >= len(log) // 4, served  # round robin: about half each
    # Signed-in pages were answered by both instances (the sessions live in the database).
    by_id = {entry["id"]: entry for entry in log}
    signed_in_pages = Counter(
        by_id[answer.request_id]["upstream"]
        for answer in answers
        if answer.path == "/mon-espace" and answer.request_id in by_id
    )
    assert set(signed_in_pages) == set(stack.instances), signed_in_pages
    _each_scrape_counts_every_worker(stack, log, direct_per_instance=len(cookies))
    # A code asked through one instance was typed on the other, for some youths at least.
    per_youth = {
        who: {
            by_id[a.request_id]["upstream"] for a in answers if a.who == who and a.method == "POST"
        }
        for who in {answer.who for answer in answers if answer.who.startswith("youth-")}
    }
    assert any(len(upstreams) == 2 for upstreams in per_youth.values()), per_youth

    _wait_until_sent(stack.factory, seconds=30)
    with stack.factory() as session:
        attempts = [
            (row.youth_id, row.reason.value, row.step, row.period_key)
            for row in session.scalars(select(OutreachAttempt))
        ]
        messages = session.execute(
            select(
                OutboxMessage.idempotency_key, OutboxMessage.template, OutboxMessage.status
            ).where(OutboxMessage.channel == Channel.SMS)
        ).all()
        note_count = session.scalar(select(func.count()).select_from(FollowUpNote))
        viewed_from = set(
            session.scalars(
                select(AuditEvent.ip_address).where(
                    AuditEvent.actor_staff_id == referent, AuditEvent.ip_address.is_not(None)
                )
            )
        )
        youths = session.scalar(select(func.count()).select_from(Youth))
    # The watch: both schedulers ran their cycle at start, each quiet youth got one contact.
    # (The youths who sign in were due a "tout va bien ?" check-in: one each too.)
    assert len(attempts) == len(set(attempts))
    inactive = Counter(youth for youth, reason, *_ in attempts if reason == "inactivite")
    assert len(inactive) == QUIET and set(inactive.values()) == {1}
    # Each sign-in code and each outreach SMS left once: the provider received exactly
    # what the outbox says it sent, each message once.
    sent = [row for row in messages if row.status in {OutboxStatus.SENT, OutboxStatus.DELIVERED}]
    references = Counter(
        tag.removeprefix("ref:")
        for call in stack.sms_api.calls
        for tag in call.payload["tag"]
        if tag.startswith("ref:")
    )
    assert len(stack.sms_api.calls) == len(sent)
    assert set(references.values()) == {1}
    assert sorted(references) == sorted(row.idempotency_key for row in sent)
    codes_sent = [row for row in sent if row.template == "sign_in_code"]
    assert len(codes_sent) == SIGNING_IN
    # The référent's notes, all written, once each; the audit saw her own network, not
    # nginx's (127.0.0.0/24): X-Forwarded-For was read from the trusted proxy.
    assert note_count == notes
    assert viewed_from == {CLIENT_NETWORK}

    print(
        f"\ntwo instances: {len(log)} requests through nginx in {load_took:.1f} s of load"
        f" ({pages} public pages, {SIGNING_IN} sign-ins, {notes} notes), per instance"
        f" {dict(served)}, signed-in pages {dict(signed_in_pages)}; {len(sent)} messages sent"
        f" once each ({len(codes_sent)} codes, {len(sent) - len(codes_sent)} outreach),"
        f" {len(messages) - len(sent)} SMS held by quiet hours; {youths} youths;"
        f" {time.monotonic() - started:.1f} s"
    )


def test_nginx_takes_the_largest_request_the_platform_reads() -> None:
    """client_max_body_size follows web.middleware.MAX_REQUEST_BYTES."""
    sizes = re.findall(r"^\s*client_max_body_size (\d+)m;", NGINX_CONF.read_text(), re.MULTILINE)
    assert [int(size) * 1024 * 1024 for size in sizes] == [MAX_REQUEST_BYTES]


def test_the_image_checks_its_health_and_serves_several_workers() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE), "not root"
    assert re.search(r"^HEALTHCHECK .*/healthz", text, re.MULTILINE | re.DOTALL)
    assert int(docker_command()[docker_command().index("--workers") + 1]) > 1
