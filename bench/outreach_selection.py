"""The watch at 10,000 and 100,000 youths, on SQLite and (when PARIS_AVENIR_TEST_DATABASE_URL
is set) PostgreSQL: the four targets of issue 17.

    .venv/bin/python bench/outreach_selection.py [--sizes 10000 100000] [--backends sqlite postgresql]

For each backend and size: seconds for the selection alone (the quiet youths with a step
due) and for a full dry-run cycle, and the ratio between sizes (linear would be 10x). At the
largest size, on fresh data, the first real cycle twice:
- alone, in a process of its own: its duration and the process's peak memory (maxrss);
- inside a real server (uvicorn, as `serve` runs the scheduler) while youths sign in from
  3 parallel clients (code asked, read from the SMS file, typed, then the dashboard): the
  statuses of their requests and the 99th percentile of their durations.
Then each target, met or not: selection <= 1 s, full cycle <= 30 s (PostgreSQL), peak
memory <= 200 MB, no 5xx and p99 < 500 ms during the cycle. Uses (and empties) the schemas
`bench` and `bench_load` of the PostgreSQL database.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.outreach_load

import paris_avenir.models  # noqa: F401 (every table, for the ORM)
from paris_avenir.db import create_database_engine
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.outreach import engine as outreach
from paris_avenir.outreach.policy import OutreachPolicy
from tests.outreach_load import SIGN_IN_PHONE, SignIns, populate
from tests.schemas import fresh_schema_url

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
SIGNING_IN = 1000  # youths with a number of their own, each signs in at most once
TARGETS = {"selection": 1.0, "cycle": 30.0, "memory_mb": 200.0, "p99": 0.5}


def fresh(name: str, base: str, directory: Path, label: str) -> str:
    """A URL to an empty, migrated database, populated by the caller."""
    if name == "sqlite":
        url = f"sqlite:///{directory / f'{label}.sqlite3'}"
    else:
        url = fresh_schema_url(base, "bench" if label.startswith("bench") else "bench_load")
    engine = create_database_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    return url


def measure(engine: Engine) -> tuple[float, float, int]:
    factory = sessionmaker(bind=engine)
    with factory() as session:
        started = time.perf_counter()
        due = outreach.inactivity_candidates(session, NOW, OutreachPolicy())
        selection = time.perf_counter() - started
        session.rollback()
        started = time.perf_counter()
        outreach.run_cycle(session, base_url="http://x", secret_key="k" * 40, now=NOW, dry_run=True)
        cycle = time.perf_counter() - started
        session.rollback()
    return selection, cycle, len(due)


def real_cycle_alone(url: str) -> dict[str, float]:
    """The first real cycle in a child process: (seconds, contacts, tasks, peak MB)."""
    child = subprocess.run(
        [sys.executable, __file__, "--child-cycle", url],
        capture_output=True,
        text=True,
    )
    if child.returncode:
        raise RuntimeError(child.stderr)
    result: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def child_cycle(url: str) -> None:
    engine = create_database_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    started = time.perf_counter()
    with factory() as session:
        report = outreach.run_cycle(session, base_url="http://x", secret_key="k" * 40, now=NOW)
        session.commit()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                "contacts": report.contact_count,
                "tasks": len(report.tasks),
                "peak_mb": peak_mb,
            }
        )
    )
    engine.dispose()


def cycle_beside_sign_ins(url: str, directory: Path) -> tuple[float, SignIns]:
    """The first real cycle in the server's process (the scheduler's job, as `serve` runs
    it) while youths sign in."""
    from paris_avenir import scheduler
    from paris_avenir.auth import codes
    from tests.servers import race_platform

    # Every sign-in comes from the loopback address: its limit is not what is measured.
    codes.IP_LIMITS = ((codes.IP_LIMITS[0][0], 100_000), (codes.IP_LIMITS[1][0], 100_000))
    with race_platform(url, directory, pool={}, base_url="http://x") as platform:
        sign_ins = SignIns(
            platform.url,
            Path(platform.settings.sms_file),
            [SIGN_IN_PHONE.format(number) for number in range(SIGNING_IN)],
        )
        sign_ins.start()
        time.sleep(1.0)  # sign-ins under way before the cycle starts
        started = time.perf_counter()
        job = threading.Thread(
            target=scheduler.outreach_cycle, args=(platform.factory, platform.settings)
        )
        job.start()
        job.join()
        seconds = time.perf_counter() - started
        sign_ins.stop()
    return seconds, sign_ins


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--child-cycle")
    args = parser.parse_args()
    if args.child_cycle:
        child_cycle(args.child_cycle)
        return
    base = os.environ.get("PARIS_AVENIR_TEST_DATABASE_URL", "")
    backends = [name for name in args.backends if name == "sqlite" or base]
    with tempfile.TemporaryDirectory() as name_of_directory:
        directory = Path(name_of_directory)
        for name in backends:
            results = {}
            largest = max(args.sizes)
            alone: dict[str, float] = {}
            for size in sorted(args.sizes):
                url = fresh(name, base, directory, f"bench-{size}")
                engine = create_database_engine(url)
                populate(engine, size, NOW, signing_in=SIGNING_IN)
                results[size] = measure(engine)
                engine.dispose()
                selection, cycle, due = results[size]
                print(
                    f"{name:10} {size:>7} youths: selection {selection:.3f} s, "
                    f"dry-run cycle {cycle:.3f} s ({due} quiet youths with a step due)",
                    flush=True,
                )
                if size == largest:
                    alone = real_cycle_alone(url)
                    print(
                        f"{name:10} {size:>7} youths: first real cycle alone "
                        f"{alone['seconds']:.1f} s ({alone['contacts']:.0f} contacts, "
                        f"{alone['tasks']:.0f} other tasks), peak memory "
                        f"{alone['peak_mb']:.0f} MB",
                        flush=True,
                    )
            sizes = sorted(results)
            if len(sizes) > 1:
                small, large = results[sizes[0]], results[sizes[-1]]
                print(
                    f"{name:10} ratio {sizes[-1] // sizes[0]}x youths: selection "
                    f"x{large[0] / small[0]:.1f}, dry-run cycle x{large[1] / small[1]:.1f}"
                )
            url = fresh(name, base, directory, f"load-{largest}")
            engine = create_database_engine(url)
            # The scheduler's job runs at the wall clock's time.
            populate(engine, largest, datetime.now(UTC), signing_in=SIGNING_IN)
            engine.dispose()
            seconds, sign_ins = cycle_beside_sign_ins(url, directory / f"server-{name}")
            statuses = Counter(sign_ins.statuses)
            errors = sum(count for status, count in statuses.items() if status >= 500)
            p99 = sign_ins.percentile(0.99)
            print(
                f"{name:10} {largest:>7} youths: first real cycle beside sign-ins {seconds:.1f} s; "
                f"{sign_ins.completed} sign-ins, {len(sign_ins.statuses)} requests "
                f"{dict(sorted(statuses.items()))}, p50 {sign_ins.percentile(0.5) * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms"
            )
            selection = results[largest][0]
            print(
                f"{name:10} targets at {largest} youths: "
                f"selection {selection:.2f} s <= {TARGETS['selection']:.0f} s "
                f"{verdict(selection <= TARGETS['selection'])}; "
                f"full cycle {alone['seconds']:.1f} s <= {TARGETS['cycle']:.0f} s "
                f"{verdict(alone['seconds'] <= TARGETS['cycle'])}"
                f"{'' if name == 'postgresql' else ' (the target is for PostgreSQL)'}; "
                f"peak memory {alone['peak_mb']:.0f} MB <= {TARGETS['memory_mb']:.0f} MB "
                f"{verdict(alone['peak_mb'] <= TARGETS['memory_mb'])}; "
                f"sign-in during the cycle: {errors} 5xx, p99 {p99 * 1000:.0f} ms < "
                f"{TARGETS['p99'] * 1000:.0f} ms "
                f"{verdict(errors == 0 and p99 < TARGETS['p99'] and sign_ins.completed > 0)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
