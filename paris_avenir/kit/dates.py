"""Calendar arithmetic without surprises at month ends, and the one timezone people live in.

Instants are stored in UTC; a person's day (a birthday, "today", a deadline) is a day in
Paris, so every conversion goes through `PARIS`, `paris_day` and `paris_today`.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris_day(instant: datetime) -> date:
    """The calendar day in Paris of an aware instant (23:30 UTC on 31 March is 1 April)."""
    return instant.astimezone(PARIS).date()


def paris_today(now: datetime | None = None) -> date:
    """Today in Paris, at `now` (the wall clock when a caller has no clock of its own)."""
    return paris_day(now if now is not None else datetime.now(UTC))


def add_months(day: date, months: int) -> date:
    """31 January + 1 month = 28 (or 29) February."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def years_before(day: date, years: int) -> date:
    """The same day `years` earlier (negative: later); 29 February becomes 28 February."""
    return add_months(day, -12 * years)


def birthday(birth: date, age: int) -> date:
    """The day someone turns `age` (28 February for those born on 29 February)."""
    return add_months(birth, 12 * age)
