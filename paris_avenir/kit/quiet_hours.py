"""Quiet hours: no message between 20:00 and 09:00 or on Sunday, Paris time.

Computed on Paris wall-clock dates with zoneinfo, so the boundaries stay at 09:00 and 20:00
local time across the changes to and from summer time.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
OPENS = time(9, 0)
CLOSES = time(20, 0)
SUNDAY = 6


def is_quiet(instant: datetime) -> bool:
    local = instant.astimezone(PARIS)
    return local.weekday() == SUNDAY or not (OPENS <= local.time() < CLOSES)


def next_sending_time(instant: datetime) -> datetime:
    """`instant` itself if messages may go now, otherwise the next 09:00 that is not a Sunday."""
    if not is_quiet(instant):
        return instant
    local = instant.astimezone(PARIS)
    day = local.date() if local.time() < OPENS else local.date() + timedelta(days=1)
    while day.weekday() == SUNDAY:
        day += timedelta(days=1)
    return datetime.combine(day, OPENS, tzinfo=PARIS).astimezone(UTC)
