"""The client's address, for the per-address limits and the audit: the TCP peer, or what a
configured trusted proxy saw — never an X-Forwarded-For a client wrote itself. Checked
against a real server on loopback, served with `paris-avenir serve`'s options (uvicorn's own
proxy headers believed 127.0.0.1, so anyone on the host could pick an address)."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir import cli
from paris_avenir.app import SERVER_OPTIONS, create_app
from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.codes import IP_LIMITS
from paris_avenir.auth.models import AuthMethod
from paris_avenir.config import ConfigurationError, Settings, get_settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole
from paris_avenir.web.middleware import TrustedProxies
from tests.conftest import BACKENDS, postgres_schema_url
from tests.factories import create_staff
from tests.servers import PlatformServer

PER_ADDRESS = IP_LIMITS[0][1]  # code requests per address in the shortest window
PROXY = "127.0.0.1"  # the test's "reverse proxy" is the test itself, on loopback
_numbers = itertools.count(1)  # 06 39 98 60 01…: fictional numbers (ARCEP)


# --- The rule -------------------------------------------------------------------------


def test_the_rightmost_address_a_trusted_proxy_did_not_add_is_the_client() -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "192.0.2.1"])
    # Untrusted peer: its header is its own word, ignored.
    assert trusted.client_address("198.51.100.7", ["203.0.113.9"]) == "198.51.100.7"
    # Trusted peer: the address it saw (what the client wrote on the left is ignored).
    assert trusted.client_address("10.1.2.3", ["6.6.6.6, 203.0.113.9"]) == "203.0.113.9"
    # Two proxies in a row, and the header split over two lines.
    assert trusted.client_address("10.1.2.3", ["6.6.6.6", "203.0.113.9, 192.0.2.1"]) == (
        "203.0.113.9"
    )
    # Ports and IPv6 as proxies write them.
    assert trusted.client_address("192.0.2.1", ["203.0.113.9:4321"]) == "203.0.113.9"
    assert trusted.client_address("192.0.2.1", ["[2001:db8::7]:443"]) == "2001:db8::7"
    # Garbage where the proxy's entry should be: believe nothing, keep the proxy.
    assert trusted.client_address("192.0.2.1", ["<script>"]) == "192.0.2.1"
    # No header from a trusted peer: the peer.
    assert trusted.client_address("192.0.2.1", []) == "192.0.2.1"
    # Nobody trusted by default, loopback included.
    assert TrustedProxies([]).client_address("127.0.0.1", ["203.0.113.9"]) == "127.0.0.1"


def test_trusted_proxies_are_addresses_or_networks_and_none_by_default() -> None:
    assert Settings().trusted_proxy_list == []
    assert Settings(trusted_proxies=" 10.0.0.5, 10.1.0.0/16 ").trusted_proxy_list == [
        "10.0.0.5",
        "10.1.0.0/16",
    ]
    for wrong in ("*", "proxy.example.org", "10.0.0.0/40"):
        with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES"):
            Settings(trusted_proxies=wrong)


def test_serve_leaves_uvicorn_s_proxy_headers_and_access_log_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    called: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: called.update(options))
    monkeypatch.setenv("PARIS_AVENIR_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.sqlite3'}")
    monkeypatch.setattr("paris_avenir.scheduler.build_scheduler", lambda *_args: _NoScheduler())
    get_settings.cache_clear()
    try:
        cli.cmd_serve(cli.build_parser().parse_args(["serve", "--port", "18301"]))
    finally:
        get_settings.cache_clear()
    assert called["proxy_headers"] is False
    assert called["access_log"] is False
    assert called["log_config"] is None
    assert SERVER_OPTIONS["proxy_headers"] is False


class _NoScheduler:
    def start(self) -> None:
        pass

    def shutdown(self, wait: bool) -> None:
        pass


# --- Against a real server --------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('client-address') / 'db.sqlite3'}"
    else:
        url = postgres_schema_url("client_address", needed_for="client address on PostgreSQL")
    engine = create_database_engine(url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@contextmanager
def serving(engine: Engine, directory: Path, *, trusted_proxies: str = "") -> Iterator[str]:
    settings = Settings(
        env="dev",
        secret_key="client-address-secret-" + "x" * 32,
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url="smtp://127.0.0.1:9",
        trusted_proxies=trusted_proxies,
    )
    server = PlatformServer(create_app(settings, engine=engine))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _csrf(client: httpx.Client, page: str = "/connexion") -> str:
    match = re.search(r'"x-csrftoken": "([^"]+)"', client.get(page).text)
    assert match
    return match.group(1)


def _ask_for_codes(client: httpx.Client, forwarded_for: list[str]) -> list[int]:
    """One code request per header value, each for a different (unknown) number, so that
    only the per-address limit can refuse them."""
    token = _csrf(client)
    statuses = []
    for value in forwarded_for:
        number = next(_numbers)
        response = client.post(
            "/connexion",
            data={
                "csrftoken": token,
                "destination": f"06 39 98 {60 + number // 100:02d} {number % 100:02d}",
            },
            headers={"X-Forwarded-For": value},
        )
        statuses.append(response.status_code)
    return statuses


def test_forged_forwarded_for_from_an_untrusted_client_is_ignored_by_the_limit(
    database: Engine, tmp_path: Path
) -> None:
    forged = [f"203.0.{index}.{index + 1}" for index in range(PER_ADDRESS + 5)]
    with serving(database, tmp_path) as url, httpx.Client(base_url=url) as client:
        statuses = _ask_for_codes(client, forged)
    # Different "addresses", limited as the one they all came from.
    assert statuses == [303] * PER_ADDRESS + [429] * 5


def test_a_shelter_s_wifi_does_not_lock_out_a_workshop_of_thirty(
    database: Engine, tmp_path: Path
) -> None:
    """Thirty youths behind the shelter's one public address (as the City's proxy sees it),
    each asking for a code once, one in three twice (the SMS was slow): nobody is refused."""
    with (
        serving(database, tmp_path, trusted_proxies=PROXY) as url,
        httpx.Client(base_url=url) as client,
    ):
        statuses = _ask_for_codes(client, ["192.0.2.50"] * 40)
    assert statuses == [303] * 40


def test_clients_behind_a_trusted_proxy_are_limited_separately(
    database: Engine, tmp_path: Path
) -> None:
    with (
        serving(database, tmp_path, trusted_proxies=PROXY) as url,
        httpx.Client(base_url=url) as first,
        httpx.Client(base_url=url) as second,
    ):
        # The first client also writes its own header: the proxy appends what it saw.
        first_statuses = _ask_for_codes(
            first, [f"6.6.6.{index}, 198.51.100.7" for index in range(PER_ADDRESS + 1)]
        )
        second_statuses = _ask_for_codes(second, ["203.0.113.9"] * 3)
    assert first_statuses == [303] * PER_ADDRESS + [429]
    # The proxy's address is shared by everyone: the second client is not blocked.
    assert second_statuses == [303] * 3


def _denied_from(
    url: str, factory: sessionmaker[Session], staff_id: uuid.UUID, forwarded_for: str
) -> str | None:
    """A staff member opens a youth out of their scope (404, audited); the audit's address."""
    with factory.begin() as session:
        started = sessions.start_session(
            session, staff_id=staff_id, method=AuthMethod.PASSWORD_TOTP
        )
    with httpx.Client(base_url=url) as client:
        client.cookies.set("session", started.token)
        target = uuid.uuid4()
        page = client.get(f"/pro/jeunes/{target}", headers={"X-Forwarded-For": forwarded_for})
    assert page.status_code == 404
    with factory() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "access_denied", AuditEvent.object_id == target
            )
        ).one()
        return event.ip_address


def test_the_audit_records_the_address_the_trusted_proxy_saw_and_no_forged_one(
    database: Engine, tmp_path: Path
) -> None:
    factory = make_session_factory(database)
    with factory.begin() as session:
        staff_id = create_staff(session, StaffRole.REFERENT).id
    with serving(database, tmp_path) as url:
        forged = [_denied_from(url, factory, staff_id, value) for value in ("6.6.6.6", "7.7.7.7")]
    with serving(database, tmp_path, trusted_proxies=PROXY) as url:
        seen = [
            _denied_from(url, factory, staff_id, value)
            for value in ("6.6.6.6, 198.51.100.7", "203.0.113.9", "9.9.9.9, 198.51.100.7")
        ]
    # Stored however the audit stores addresses: the same for one client, different for two.
    assert forged[0] == forged[1] and forged[0] is not None
    assert not {"6.6.6.6", "7.7.7.7"} & set(forged)
    assert seen[0] == seen[2] != seen[1]
    assert seen[0] != forged[0]
    assert "6.6.6.6" not in seen and "9.9.9.9" not in seen
