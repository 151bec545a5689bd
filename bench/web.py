"""The platform's pages against the bare stack, on one machine, in one run.

    .venv/bin/python bench/web.py [--seconds 8] [--connections 32] [--backends sqlite postgresql]

Starts, each in its own process on loopback with one uvicorn worker: the bare FastAPI
hello-world (bench/hello.py, a sync and an async handler) and the platform with the demo data
(SQLite file, or the schema `bench_web` of PARIS_AVENIR_TEST_DATABASE_URL). Signs in a youth
and a référent of the demo (server-side sessions, as a sign-in makes them), then loads each
page with wrk (Debian's package), alternating with the sync hello-world (A B A B), and
prints for each: requests per second, p50 and p99 latency, the server's CPU time per
request (read from /proc before and after), non-2xx answers and socket errors, and the
ratio of its throughput to the sync hello-world's measured in the same run. Then the
youth's dashboard at 128 and 512 connections: every request answered, no error.

Absolute numbers depend on the machine; the ratios are what the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.schemas, when run as a script
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: the server for {url} stopped (exit {process.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"bench: {url} did not answer")


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    bad_answers: int
    socket_errors: int
    requests: int


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    name: str, url: str, pid: int, *, seconds: int, connections: int, cookie: str | None
) -> Result:
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    before = cpu_seconds(pid)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    spent = cpu_seconds(pid) - before
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, re.MULTILINE))
    if set(latency) != {"50", "99"}:
        raise SystemExit(f"bench: wrk's output not understood for {name}:\n{out}")
    return Result(
        name=name,
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_milliseconds(latency["50"]),
        p99_ms=_milliseconds(latency["99"]),
        cpu_ms_per_request=spent * 1000 / max(total, 1),
        bad_answers=int(bad.group(1)) if bad else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
        requests=total,
    )


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE)


def serve_platform(database_url: str, port: int, directory: Path) -> None:
    """Child process: migrate, load the demo, make the sessions, print them, serve."""
    import uvicorn
    from sqlalchemy import select

    from paris_avenir.aid_requests.models import AidRequest
    from paris_avenir.app import SERVER_OPTIONS, create_app
    from paris_avenir.auth import sessions
    from paris_avenir.auth.models import AuthMethod
    from paris_avenir.config import Settings
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.demo import load_demo_data
    from paris_avenir.kit.crypto import build_cipher
    from paris_avenir.migrate import upgrade_to_head
    from paris_avenir.staff.assignments import current_referent
    from paris_avenir.staff.models import StaffUser
    from paris_avenir.youths.models import Youth

    settings = Settings(
        env="dev",
        secret_key="bench-web-secret-" + "x" * 32,
        database_url=database_url,
        base_url=f"http://127.0.0.1:{port}",
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url="smtp://127.0.0.1:9",
    )
    engine = create_database_engine(database_url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        load_demo_data(session, cipher=build_cipher(settings))
    with factory.begin() as session:
        youth = session.scalars(
            select(Youth).join(AidRequest, AidRequest.youth_id == Youth.id).limit(1)
        ).one()
        request_id = session.scalars(
            select(AidRequest.id).where(AidRequest.youth_id == youth.id).limit(1)
        ).one()
        referent = current_referent(session, youth.id)
        assert isinstance(referent, StaffUser)
        youth_token = sessions.start_session(
            session, youth_id=youth.id, method=AuthMethod.CODE
        ).token
        staff_token = sessions.start_session(
            session, staff_id=referent.id, method=AuthMethod.PASSWORD_TOTP
        ).token
    name = settings.session_cookie_name
    print(
        json.dumps(
            {
                "youth_cookie": f"{name}={youth_token}",
                "staff_cookie": f"{name}={staff_token}",
                "youth_id": str(youth.id),
                "request_id": str(request_id),
            }
        ),
        flush=True,
    )
    app = create_app(settings, engine=engine)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--serve-platform", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_platform:
        url, port, directory = args.serve_platform
        serve_platform(url, int(port), Path(directory))
        return 0
    if shutil.which("wrk") is None:
        print("bench: wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PARIS_AVENIR_DATABASE_URL", None)
    hello_port = free_port()
    hello = start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.hello:app",
            "--port",
            str(hello_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env,
    )
    hello_url = f"http://127.0.0.1:{hello_port}"
    try:
        wait_until_up(hello_url + "/sync", hello)
        for url_path in ("/sync", "/async"):  # warm up
            run_wrk("warm", hello_url + url_path, hello.pid, seconds=1, connections=4, cookie=None)
        for backend in args.backends:
            run_backend(backend, args, env, hello, hello_url)
    finally:
        hello.terminate()
        hello.wait()
    return 0


def run_backend(
    backend: str,
    args: argparse.Namespace,
    env: dict[str, str],
    hello: subprocess.Popen[bytes],
    hello_url: str,
) -> None:
    directory = Path(tempfile.mkdtemp(prefix=f"bench-web-{backend}-"))
    if backend == "postgresql":
        base = os.environ.get("PARIS_AVENIR_TEST_DATABASE_URL")
        if not base:
            print("postgresql: skipped (PARIS_AVENIR_TEST_DATABASE_URL is not set)")
            return
        from tests.schemas import fresh_schema_url

        url = fresh_schema_url(base, "bench_web")
    else:
        url = f"sqlite:///{directory / 'bench.sqlite3'}"
    port = free_port()
    platform = start(
        [sys.executable, str(Path(__file__)), "--serve-platform", url, str(port), str(directory)],
        env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        assert platform.stdout is not None
        demo = json.loads(platform.stdout.readline())
        wait_until_up(base_url + "/", platform)
        pages = [
            ("home page", "/", None),
            ("youth dashboard", "/mon-espace", demo["youth_cookie"]),
            ("a request page", f"/mon-espace/demandes/{demo['request_id']}", demo["youth_cookie"]),
            ("référent dashboard", "/pro", demo["staff_cookie"]),
            ("staff youth file", f"/pro/jeunes/{demo['youth_id']}", demo["staff_cookie"]),
        ]
        print(
            f"\n== {backend}: {args.connections} connections, {args.seconds} s per run, "
            "A B A B against the sync hello-world"
        )
        print(
            f"{'page':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}"
            f"{'errors':>8}{'× sync hello':>14}"
        )

        def measure(name: str, url: str, pid: int, cookie: str | None, connections: int) -> Result:
            return run_wrk(
                name, url, pid, seconds=args.seconds, connections=connections, cookie=cookie
            )

        async_hello = measure(
            "hello (async)", hello_url + "/async", hello.pid, None, args.connections
        )
        bare_runs: list[Result] = []
        for name, path, cookie in pages:
            run_wrk("warm", base_url + path, platform.pid, seconds=1, connections=4, cookie=cookie)
            page_runs: list[Result] = []
            for _round in range(2):  # A B A B
                bare_runs.append(
                    measure("hello (sync)", hello_url + "/sync", hello.pid, None, args.connections)
                )
                page_runs.append(
                    measure(name, base_url + path, platform.pid, cookie, args.connections)
                )
            bare_rps = sum(bare.requests_per_second for bare in bare_runs[-2:]) / 2
            for page in page_runs:
                show_line(page, page.requests_per_second / bare_rps)
        show_line(bare_runs[-1], None)
        show_line(async_hello, None)
        for connections in (128, 512):
            crowd = measure(
                f"youth dashboard ×{connections}",
                base_url + "/mon-espace",
                platform.pid,
                demo["youth_cookie"],
                connections,
            )
            show_line(crowd, None)
    finally:
        platform.terminate()
        platform.wait()


def show_line(result: Result, ratio: float | None) -> None:
    print(
        f"{result.name:<22}{result.requests_per_second:>9.0f}{result.p50_ms:>9.1f}"
        f"{result.p99_ms:>9.1f}{result.cpu_ms_per_request:>12.2f}"
        f"{result.bad_answers + result.socket_errors:>8}"
        + (f"{ratio:>13.1%}" if ratio is not None else "")
    )


if __name__ == "__main__":
    raise SystemExit(main())
