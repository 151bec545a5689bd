"""A newcomer's first minutes: `make run PORT=8010` serves there with links there, and
`migrate` and `demo` each say in one line what they did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paris_avenir import cli
from paris_avenir.config import PROJECT_ROOT, get_settings


class _NoScheduler:
    def start(self) -> None:
        pass

    def shutdown(self, wait: bool) -> None:
        pass


def serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> dict[str, Any]:
    """`paris-avenir serve ARGV` in process, up to uvicorn: the app and where it listens."""
    import uvicorn

    called: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: called.update(options, app=app))
    monkeypatch.setattr("paris_avenir.scheduler.build_scheduler", lambda *_args: _NoScheduler())
    monkeypatch.setenv("PARIS_AVENIR_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.sqlite3'}")
    get_settings.cache_clear()
    try:
        cli.cmd_serve(cli.build_parser().parse_args(["serve", *argv]))
    finally:
        get_settings.cache_clear()
    return called


def test_make_run_passes_its_port_to_serve() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "run", "PORT=8010"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "paris-avenir serve --host 127.0.0.1 --port 8010" in dry_run.stdout


def test_serve_on_another_port_puts_that_port_in_the_links(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PARIS_AVENIR_BASE_URL", raising=False)
    called = serve(monkeypatch, tmp_path, "--port", "8010")
    assert called["port"] == 8010 and called["host"] == "127.0.0.1"
    assert called["app"].state.settings.base_url == "http://127.0.0.1:8010"
    # The links of SMS and emails are built from the channels' base URL.
    assert called["app"].state.channels.base_url == "http://127.0.0.1:8010"
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8010/dev/messages" in out


def test_an_explicit_base_url_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PARIS_AVENIR_BASE_URL", "https://paris-avenir.example.org")
    called = serve(monkeypatch, tmp_path, "--host", "0.0.0.0", "--port", "8010")  # noqa: S104
    assert called["app"].state.settings.base_url == "https://paris-avenir.example.org"


def test_serve_on_all_interfaces_links_to_the_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PARIS_AVENIR_BASE_URL", raising=False)
    called = serve(monkeypatch, tmp_path, "--host", "0.0.0.0", "--port", "8011")  # noqa: S104
    assert called["app"].state.settings.base_url == "http://127.0.0.1:8011"


def run_cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PARIS_AVENIR_")
    }
    environment.update(
        {
            "PARIS_AVENIR_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
            "PARIS_AVENIR_SMS_FILE": str(tmp_path / "sms.jsonl"),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "paris_avenir.cli", *argv],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_migrate_and_demo_each_say_one_line_with_the_real_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A process of its own: Alembic logs as soon as it is imported.
    migrate = run_cli(tmp_path, "migrate")
    assert migrate.stderr == ""  # no Alembic INFO lines
    [line] = migrate.stdout.splitlines()
    assert line.startswith("Base de données à jour (révision ")
    assert "catalogue : 9 aides dont 9 ajoutée(s)" in line

    monkeypatch.setenv("PARIS_AVENIR_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    get_settings.cache_clear()
    try:
        assert cli.cmd_demo(cli.build_parser().parse_args(["demo"])) == 0
        [line] = capsys.readouterr().out.splitlines()
        # migrate added the aids already: the demo still counts them, never "0 aides".
        assert line.startswith("Démo : ajouté 6 agents, 30 jeunes, ")
        assert line.endswith(
            "; en base : 6 agents, 30 jeunes, 13 demandes, 12 rendez-vous, 15 messages, "
            "9 aides au catalogue."
        )
        cli.cmd_demo(cli.build_parser().parse_args(["demo"]))
        again = capsys.readouterr().out
        assert again.startswith("Démo : rien ajouté (déjà chargée) ; en base : 6 agents")
        cli.cmd_demo_totp(cli.build_parser().parse_args(["demo-totp"]))
        code = capsys.readouterr().out.strip()
    finally:
        get_settings.cache_clear()
    assert code.isdigit() and len(code) == 6
