"""A first outreach cycle over 20,000 youths while youths sign in on a real server, as
`serve` runs it (the scheduler's job in the web process): every sign-in is answered, none
with a 5xx, on SQLite and PostgreSQL. Before the cycle committed in batches, it held one
transaction for minutes and sign-in answered 500 "database is locked" on SQLite."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from paris_avenir import scheduler
from paris_avenir.auth import codes
from paris_avenir.db import create_database_engine, utcnow
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.outreach.models import OutreachAttempt
from tests.conftest import BACKENDS, postgres_schema_url
from tests.outreach_load import SIGN_IN_PHONE, SignIns, populate
from tests.servers import race_platform

YOUTHS = 20_000
SIGNING_IN = 300


@pytest.mark.parametrize("backend", BACKENDS)
def test_sign_in_answers_during_a_first_cycle_over_20000_youths(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "postgresql":
        url = postgres_schema_url("outreach_load", needed_for="the watch beside sign-ins")
    else:
        url = f"sqlite:///{tmp_path / 'load.sqlite3'}"
    engine = create_database_engine(url)
    upgrade_to_head(engine)
    populate(engine, YOUTHS, utcnow(), signing_in=SIGNING_IN)
    engine.dispose()
    # Every sign-in comes from the loopback address: its own limit is not what is tested.
    monkeypatch.setattr(codes, "IP_LIMITS", tuple((w, 100_000) for w, _m in codes.IP_LIMITS))
    with race_platform(url, tmp_path, pool={}, base_url="http://x") as platform:
        sign_ins = SignIns(
            platform.url,
            Path(platform.settings.sms_file),
            [SIGN_IN_PHONE.format(number) for number in range(SIGNING_IN)],
        )
        sign_ins.start()
        job = threading.Thread(
            target=scheduler.outreach_cycle, args=(platform.factory, platform.settings)
        )
        job.start()
        job.join(timeout=300)
        sign_ins.stop()
        with platform.factory() as session:
            made = session.scalar(select(func.count()).select_from(OutreachAttempt))
    statuses = Counter(sign_ins.statuses)
    assert not job.is_alive()
    assert not [status for status in statuses if status >= 500], statuses
    assert set(statuses) <= {200, 303}, statuses
    assert sign_ins.completed > 0
    assert made is not None and made > YOUTHS // 2  # the cycle did its work meanwhile
