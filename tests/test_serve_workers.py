"""`paris-avenir serve --workers N`: uvicorn's workers from the app factory, the scheduler in
a process of its own (tests/test_two_instances.py runs it for real behind nginx)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paris_avenir import cli
from paris_avenir.app import requests_in_flight
from paris_avenir.config import get_settings
from paris_avenir.web.middleware import InFlightLimitMiddleware


class _Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")

    def shutdown(self, wait: bool) -> None:
        self.events.append("shutdown")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    import os

    for key in [key for key in os.environ if key.startswith("PARIS_AVENIR_")]:
        if key != "PARIS_AVENIR_LOG_FILE":
            monkeypatch.delenv(key)
    monkeypatch.setenv("PARIS_AVENIR_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.sqlite3'}")
    monkeypatch.setattr(cli, "configure_logging", lambda: None)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_several_workers_come_from_the_factory_and_the_scheduler_runs_beside_them(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import uvicorn

    called: dict[str, Any] = {}
    scheduler = _Recorder()

    def run(app: str, **options: Any) -> None:
        # What the workers will find: one directory for their request counts, empty.
        shared = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        called.update(options, app=app, shared=shared, leftovers=list(shared.iterdir()))

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setattr(cli, "SchedulerProcess", lambda: scheduler)

    def no_scheduler_in_the_web_process(*_args: Any) -> None:
        raise AssertionError("the web process runs no scheduler with several workers")

    monkeypatch.setattr("paris_avenir.scheduler.build_scheduler", no_scheduler_in_the_web_process)
    assert (
        cli.cmd_serve(cli.build_parser().parse_args(["serve", "--port", "18302", "--workers", "3"]))
        == 0
    )
    assert called["app"] == "paris_avenir.cli:worker_app" and called["factory"] is True
    assert called["workers"] == 3 and called["port"] == 18302
    assert called["proxy_headers"] is False and called["access_log"] is False
    assert scheduler.events == ["start", "stop"]
    # The workers read their settings from the environment: links lead where serve serves.
    assert os.environ["PARIS_AVENIR_BASE_URL"] == "http://127.0.0.1:18302"
    # The counts of this run's workers are gone with it, and nothing else of this process
    # (tests included) believes it is a worker.
    assert called["leftovers"] == [] and not called["shared"].exists()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_an_operator_s_metrics_directory_is_emptied_before_the_workers_start(
    environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    import uvicorn

    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "histogram_4242.db").write_bytes(b"an earlier run's counts")
    (shared / "README").write_text("kept: not prometheus-client's")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    seen: list[list[str]] = []
    monkeypatch.setattr(
        uvicorn,
        "run",
        lambda app, **_options: seen.append(sorted(p.name for p in shared.iterdir())),
    )
    monkeypatch.setattr(cli, "SchedulerProcess", _Recorder)
    args = cli.build_parser().parse_args(["serve", "--port", "18304", "--workers", "2"])
    assert cli.cmd_serve(args) == 0
    assert seen == [["README"]]
    # The operator's directory and setting stay (their server may start again).
    assert shared.is_dir() and os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(shared)


def test_one_worker_keeps_the_scheduler_in_the_web_process(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from fastapi import FastAPI

    called: dict[str, Any] = {}
    scheduler = _Recorder()
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: called.update(options, app=app))
    monkeypatch.setattr("paris_avenir.scheduler.build_scheduler", lambda *_args: scheduler)
    assert cli.cmd_serve(cli.build_parser().parse_args(["serve", "--port", "18303"])) == 0
    assert isinstance(called["app"], FastAPI) and "workers" not in called
    assert scheduler.events == ["start", "shutdown"]


def test_zero_workers_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve", "--workers", "0"])
    assert "--workers" in capsys.readouterr().err


def test_each_worker_builds_its_own_app_pool_and_in_flight_bound(environment: None) -> None:
    first, second = cli.worker_app(), cli.worker_app()
    try:
        assert first.state.engine is not second.state.engine
        for app in (first, second):
            (limit,) = [
                entry.kwargs["limit"]
                for entry in app.user_middleware
                if entry.cls is InFlightLimitMiddleware
            ]
            # The default pool (5 + 10) less the 6 connections held outside requests.
            assert limit == requests_in_flight(app.state.settings, app.state.engine) == 9
    finally:
        first.state.engine.dispose()
        second.state.engine.dispose()


def test_the_scheduler_process_is_started_again_when_it_dies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn(_self: cli.SchedulerProcess) -> subprocess.Popen[bytes]:
        # The first one dies at once; the next ones wait to be stopped.
        command = "pass" if not spawned else "import sys; sys.stdin.read()"
        spawned.append(subprocess.Popen([sys.executable, "-c", command], stdin=subprocess.PIPE))
        return spawned[-1]

    monkeypatch.setattr(cli.SchedulerProcess, "_spawn", spawn)
    monkeypatch.setattr(cli.SchedulerProcess, "RESTART_AFTER_SECONDS", 0.1)
    process = cli.SchedulerProcess()
    process.start()
    deadline = time.monotonic() + 10
    while len(spawned) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.stop()
    assert len(spawned) == 2
    assert all(child.poll() is not None for child in spawned)


def test_the_scheduler_stops_when_serve_s_end_closes_its_input(tmp_path: Path) -> None:
    """A `serve` killed with SIGKILL cannot stop its scheduler: the closed pipe does."""
    import os

    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PARIS_AVENIR_")
    }
    environment["PARIS_AVENIR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'scheduler.sqlite3'}"
    environment["PARIS_AVENIR_SMS_FILE"] = str(tmp_path / "sms.jsonl")
    child = subprocess.Popen(
        [sys.executable, "-m", "paris_avenir.cli", "scheduler", "--with-parent"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment,
    )
    assert child.stdout is not None and child.stdin is not None
    started = child.stdout.readline().decode()
    assert "Planificateur démarré" in started, started
    child.stdin.close()
    assert child.wait(timeout=20) == 0
