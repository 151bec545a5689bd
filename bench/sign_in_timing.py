"""Does asking for a sign-in code answer as fast for a registered number as for an unknown
one? A real server (uvicorn on loopback) on PostgreSQL, `--requests` code requests for
registered numbers and as many for numbers nobody has, interleaved, timed by the client.

    PARIS_AVENIR_TEST_DATABASE_URL=postgresql://… .venv/bin/python bench/sign_in_timing.py

Prints the median and the 90th percentile of both, in milliseconds. Uses (and empties) the
schema `sign_in_timing` of that database.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.schemas

from paris_avenir.app import create_app
from paris_avenir.auth import codes
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.youths.models import Youth
from tests.schemas import fresh_schema_url

SCHEMA = "sign_in_timing"


def _serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=60)
    arguments = parser.parse_args()
    count = arguments.requests
    url = os.environ["PARIS_AVENIR_TEST_DATABASE_URL"]
    engine = create_database_engine(fresh_schema_url(url, SCHEMA))
    upgrade_to_head(engine)
    # One client address sends every request here: its limit is not what is measured.
    codes.IP_LIMITS = ((codes.IP_LIMITS[0][0], 10 * count), (codes.IP_LIMITS[1][0], 10 * count))
    known = [f"+3363998{1000 + number:04d}" for number in range(count)]
    unknown = [f"+3363998{5000 + number:04d}" for number in range(count)]
    with make_session_factory(engine).begin() as session:
        for number, phone in enumerate(known):
            session.add(
                Youth(
                    ase_ref=f"TIMING-{number:05d}",
                    first_name="Camille",
                    last_name=f"Mesure{number}",
                    birth_date=date(2005, 3, 14),
                    phone=phone,
                )
            )
    directory = Path(tempfile.mkdtemp())
    settings = Settings(
        env="dev",
        secret_key="timing-secret-" + "x" * 32,
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url="smtp://127.0.0.1:9",
    )
    base, server, thread = _serve(create_app(settings, engine=engine))
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    with httpx.Client(base_url=base) as client:
        token = re.search(r'"x-csrftoken": "([^"]+)"', client.get("/connexion").text)
        assert token
        for warm_up in range(5):
            client.post(
                "/connexion",
                data={"csrftoken": token.group(1), "destination": f"+33639989{warm_up:03d}"},
            )
        for index in range(count):
            for kind, phone in (("known", known[index]), ("unknown", unknown[index])):
                client.cookies.delete("tentative_connexion")
                started = time.perf_counter()
                response = client.post(
                    "/connexion", data={"csrftoken": token.group(1), "destination": phone}
                )
                timings[kind].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 303, response.status_code
                time.sleep(0.1)  # what runs after the response is not measured
    sent = len(settings.sms_file.read_text().splitlines()) if settings.sms_file.exists() else 0
    for kind, values in timings.items():
        values.sort()
        print(
            f"{kind:8s} n={len(values)} median={statistics.median(values):.1f} ms "
            f"p90={values[int(len(values) * 0.9)]:.1f} ms"
        )
    print(f"SMS sent: {sent}")
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


if __name__ == "__main__":
    main()
