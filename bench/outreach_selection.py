"""How long the outreach cycle takes to select who to contact, among 10,000 and 100,000
youths, on SQLite and (when PARIS_AVENIR_TEST_DATABASE_URL is set) PostgreSQL.

    .venv/bin/python bench/outreach_selection.py [--sizes 10000 100000]

Prints one line per backend and size: seconds for the selection query alone and for a full
dry-run cycle, and the ratio between sizes (linear would be 10x).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import sessionmaker

from paris_avenir.db import create_database_engine
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.outreach import engine as outreach
from paris_avenir.outreach.policy import OutreachPolicy
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.youths.models import Youth

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def populate(engine: Engine, count: int) -> None:
    rng = random.Random(count)
    referent_id = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(
            insert(StaffUser),
            [
                {
                    "id": referent_id,
                    "email": f"bench{count}@example.org",
                    "full_name": "Bench",
                    "role": StaffRole.REFERENT,
                }
            ],
        )
        for start in range(0, count, 5000):
            rows = [
                {
                    "id": uuid.uuid4(),
                    "ase_ref": f"B{count}-{number}",
                    "first_name": "Jeune",
                    "last_name": f"N{number}",
                    "birth_date": date(2001 + rng.randint(1, 6), 1 + rng.randint(0, 11), 1),
                    "phone": f"+3363998{number % 10000:04d}",
                    "activated_at": NOW - timedelta(days=rng.randint(30, 700)),
                    "last_activity_at": NOW - timedelta(days=rng.randint(0, 200)),
                }
                for number in range(start, min(start + 5000, count))
            ]
            connection.execute(insert(Youth), rows)
            connection.execute(
                insert(CaseloadAssignment),
                [
                    {
                        "id": uuid.uuid4(),
                        "youth_id": row["id"],
                        "referent_id": referent_id,
                        "started_at": NOW,
                    }
                    for row in rows
                ],
            )


def measure(engine: Engine) -> tuple[float, float, int]:
    factory = sessionmaker(bind=engine)
    with factory() as session:
        started = time.perf_counter()
        candidates = outreach.inactivity_candidates(session, NOW, OutreachPolicy())
        selection = time.perf_counter() - started
        started = time.perf_counter()
        report = outreach.run_cycle(
            session, base_url="http://x", secret_key="k" * 40, now=NOW, dry_run=True
        )
        cycle = time.perf_counter() - started
        session.rollback()
    assert len(candidates) <= len(report.contacts) + len(candidates)
    return selection, cycle, len(candidates)


def backends(directory: Path) -> list[tuple[str, str]]:
    found = [("sqlite", f"sqlite:///{directory / 'bench.sqlite3'}")]
    if os.environ.get("PARIS_AVENIR_TEST_DATABASE_URL"):
        found.append(("postgresql", os.environ["PARIS_AVENIR_TEST_DATABASE_URL"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for name, url in backends(Path(directory)):
            results = {}
            for size in args.sizes:
                if name == "sqlite":
                    url = f"sqlite:///{Path(directory) / f'bench-{size}.sqlite3'}"
                    engine = create_database_engine(url)
                else:
                    setup = create_database_engine(url)
                    with setup.begin() as connection:
                        connection.execute(text("DROP SCHEMA IF EXISTS bench CASCADE"))
                        connection.execute(text("CREATE SCHEMA bench"))
                    setup.dispose()
                    engine = create_database_engine(
                        url, connect_args={"options": "-csearch_path=bench"}
                    )
                upgrade_to_head(engine)
                populate(engine, size)
                results[size] = measure(engine)
                selection, cycle, due = results[size]
                print(
                    f"{name:10} {size:>7} youths: selection {selection:.3f} s, dry-run cycle {cycle:.3f} s "
                    f"({due} quiet)"
                )
                engine.dispose()
            sizes = sorted(results)
            if len(sizes) > 1:
                small, large = results[sizes[0]], results[sizes[-1]]
                print(
                    f"{name:10} ratio {sizes[-1] // sizes[0]}x youths: selection x{large[0] / small[0]:.1f}, "
                    f"cycle x{large[1] / small[1]:.1f}"
                )


if __name__ == "__main__":
    main()
