"""Calendar arithmetic on dates (months, birthdays) without surprises at month ends."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    """31 January + 1 month = 28 (or 29) February."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def birthday(birth: date, age: int) -> date:
    """The day someone turns `age` (28 February for those born on 29 February)."""
    return add_months(birth, 12 * age)
