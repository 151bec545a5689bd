"""Two scheduler processes against one PostgreSQL database: each youth is contacted exactly
once per step (advisory lock for the cycle, unique key per contact)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from paris_avenir.db import create_database_engine
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.outreach.models import OutreachAttempt
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_staff, create_youth
from tests.helpers import forked_cli

SCHEMA = "two_schedulers"
START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, Engine]]:
    scoped_url = postgres_schema_url(SCHEMA, needed_for="two schedulers")
    engine = create_database_engine(scoped_url)
    upgrade_to_head(engine)
    yield scoped_url, engine
    engine.dispose()


def test_two_schedulers_contact_each_youth_once_per_step(database: tuple[str, Engine]) -> None:
    url, engine = database
    with sessionmaker(bind=engine).begin() as session:
        referent = create_staff(session)
        for number in range(40):
            youth = create_youth(
                session,
                birth_date=date(2004, 1, 1),
                activated_at=START - timedelta(days=300),
                last_activity_at=START - timedelta(days=25 + number % 10),
            )
            assign(session, youth, referent)
    environment = {
        "PARIS_AVENIR_DATABASE_URL": url,
        "PARIS_AVENIR_SMS_FILE": "/dev/null",
        "PARIS_AVENIR_SMTP_URL": "smtp://127.0.0.1:9",
    }
    engine.dispose()  # the children start with no connection of ours
    # Inactive 25 to 34 days on day 0: by day 21 every youth has passed the three steps
    # (SMS at 30 days, email at 37, call at 45), each on a day of its own.
    for day in (0, 6, 12, 18, 21):
        now = (START + timedelta(days=day)).isoformat()
        # Two scheduler processes at once (forked: the same race, without the imports).
        runs = [forked_cli(environment, "outreach", "run", "--now", now) for _ in range(2)]
        for run in runs:
            returncode, err = run.wait(timeout=120)
            assert returncode == 0, err
    with sessionmaker(bind=engine)() as session:
        attempts = session.execute(
            select(
                OutreachAttempt.youth_id,
                OutreachAttempt.reason,
                OutreachAttempt.step,
                OutreachAttempt.period_key,
            )
        ).all()
        per_contact = Counter(attempts)
        assert attempts and max(per_contact.values()) == 1
        steps = Counter(
            (row.youth_id, row.step) for row in attempts if row.reason.value == "inactivite"
        )
        assert max(steps.values()) == 1
        assert {step for _youth, step in steps} == {1, 2, 3}
        messages = session.scalars(select(OutboxMessage.idempotency_key)).all()
        assert len(messages) == len(set(messages))
        with_channel = sum(
            1 for row in session.scalars(select(OutreachAttempt)) if row.channel is not None
        )
        assert len(messages) == with_channel
