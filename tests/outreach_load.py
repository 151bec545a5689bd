"""Many youths for the watch, and youths signing in while it runs: shared by the test of a
cycle beside sign-ins (tests/test_outreach_load.py) and bench/outreach_selection.py.

`populate` writes youths with bulk INSERTs (seconds for 100,000): activated 30 to 700 days
ago, last active 0 to 200 days ago, 18 to 24, all followed by one référent. `SignIns` runs
full youth sign-ins against a real server (code asked, read from the SMS file, typed, then
the youth's dashboard) from a few parallel clients, and keeps every status and duration."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, insert, text

from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.youths.models import Youth

SIGN_IN_PHONE = "+3361200{:04d}"  # the youths who sign in (the others share numbers)


def populate(engine: Engine, count: int, now: datetime, *, signing_in: int = 0) -> None:
    """`count` youths for the watch, the first `signing_in` of them with numbers of their
    own (SIGN_IN_PHONE) for SignIns."""
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
                    "phone": (
                        SIGN_IN_PHONE.format(number)
                        if number < signing_in
                        else f"+3363998{number % 10000:04d}"
                    ),
                    "activated_at": now - timedelta(days=rng.randint(30, 700)),
                    "last_activity_at": now - timedelta(days=rng.randint(0, 200)),
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
                        "started_at": now,
                    }
                    for row in rows
                ],
            )
    if engine.dialect.name == "postgresql":
        # A city's 100,000 youths were imported long before a cycle runs, and autovacuum
        # analysed their tables within a minute; a bench that starts the cycle at once
        # would measure plans made for empty tables instead (estimates of 80 rows).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE youth, caseload_assignment, staff_user"))


@dataclass
class SignIns:
    """Youths signing in, one after the other on each of `clients` threads, until stop()."""

    url: str
    sms_file: Path
    phones: list[str]
    clients: int = 3
    statuses: list[int] = field(default_factory=list)  # every request's
    durations: list[float] = field(default_factory=list)  # every request's, in seconds
    completed: int = 0  # sign-ins that reached the dashboard
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for index in range(self.clients):
            phones = self.phones[index :: self.clients]
            thread = threading.Thread(target=self._run, args=(phones,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.durations)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0

    def _request(self, client: httpx.Client, method: str, path: str, **kwargs: object) -> int:
        started = time.perf_counter()
        status = client.request(method, path, **kwargs).status_code  # type: ignore[arg-type]
        with self._lock:
            self.durations.append(time.perf_counter() - started)
            self.statuses.append(status)
        return status

    def _code_for(self, phone: str, seen: int) -> str | None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = self.sms_file.read_text().splitlines() if self.sms_file.exists() else []
            # The last line may be half written: only whole lines are read.
            whole = [json.loads(line) for line in lines if line.endswith("}")]
            texts = [sms["text"] for sms in whole if sms["to"] == phone]
            codes = [found.group(1) for text in texts if (found := re.search(r"\b(\d{6})\b", text))]
            if len(codes) > seen:
                return codes[-1]
            time.sleep(0.02)
        return None

    def _run(self, phones: list[str]) -> None:
        asked: dict[str, int] = {}
        turn = 0
        while not self._stop.is_set():
            phone = phones[turn % len(phones)]
            turn += 1
            with httpx.Client(base_url=self.url, timeout=60) as client:
                page = client.get("/connexion")
                token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
                if page.status_code != 200 or token is None:
                    with self._lock:
                        self.statuses.append(page.status_code)
                    continue
                form = {"csrftoken": token.group(1)}
                seen = asked.get(phone, 0)
                status = self._request(
                    client, "POST", "/connexion", data={**form, "destination": phone}
                )
                if status != 303:
                    continue
                asked[phone] = seen + 1
                code = self._code_for(phone, seen)
                if code is None:
                    continue
                status = self._request(
                    client, "POST", "/connexion/code", data={**form, "code": code}
                )
                if status == 303 and self._request(client, "GET", "/mon-espace") == 200:
                    with self._lock:
                        self.completed += 1
