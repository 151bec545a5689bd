from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from paris_avenir.kit.quiet_hours import DEFAULT as QUIET_HOURS

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[arg-type,misc]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (paris(2026, 11, 25, 14, 0), paris(2026, 11, 25, 14, 0)),  # Wednesday afternoon: now
        (paris(2026, 11, 25, 20, 0), paris(2026, 11, 26, 9, 0)),  # 20:00 sharp: tomorrow 9:00
        (paris(2026, 11, 26, 7, 30), paris(2026, 11, 26, 9, 0)),  # early morning: 9:00
        (paris(2026, 11, 28, 21, 0), paris(2026, 11, 30, 9, 0)),  # Saturday night: Monday
        (paris(2026, 11, 29, 12, 0), paris(2026, 11, 30, 9, 0)),  # Sunday noon: Monday
        # The nights summer time starts and ends: still 9:00 on the wall clock.
        (paris(2026, 3, 28, 23, 0), paris(2026, 3, 30, 9, 0)),
        (paris(2026, 10, 24, 22, 0), paris(2026, 10, 26, 9, 0)),
        (paris(2026, 10, 26, 1, 30), paris(2026, 10, 26, 9, 0)),
    ],
)
def test_messages_wait_for_the_next_opening(moment: datetime, expected: datetime) -> None:
    result = QUIET_HOURS.next_sending_time(moment.astimezone(UTC))
    assert result == expected
    assert result.astimezone(PARIS).hour == 9 or result == moment
    assert not QUIET_HOURS.is_quiet(result)
