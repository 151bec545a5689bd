"""Quiet hours: no message outside the sending window or on Sunday, Paris time.

The window is the admin's (outreach policy page, default 09:00–20:00). It is checked when a
message is queued and again when it is sent, so that a retry, a backlog after downtime or a
late dispatcher never sends at night or on Sunday. Only sign-in and contact-verification
codes are never held.

Computed on Paris wall-clock dates with zoneinfo, so the boundaries stay on the hour local
time across the changes to and from summer time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from paris_avenir.kit import settings_store

PARIS = ZoneInfo("Europe/Paris")
SUNDAY = 6
# A reminder that would fall in quiet hours leaves this long before they start instead.
EARLY_MARGIN = timedelta(minutes=30)
# The admin edits the window with the rest of the outreach policy, stored under this key.
POLICY_SETTING_KEY = "outreach_policy"
DEFAULT_STARTS, DEFAULT_ENDS = 20, 9


@dataclass(frozen=True)
class QuietHours:
    """Quiet from `starts` o'clock until `ends` o'clock the next morning, and all Sunday."""

    starts: int = DEFAULT_STARTS
    ends: int = DEFAULT_ENDS

    def __post_init__(self) -> None:
        if not 0 <= self.ends < self.starts <= 23:
            raise ValueError("the sending window must open before it closes, the same day")

    @property
    def opens(self) -> time:
        return time(self.ends)

    @property
    def closes(self) -> time:
        return time(self.starts)

    def is_quiet(self, instant: datetime) -> bool:
        local = instant.astimezone(PARIS)
        return local.weekday() == SUNDAY or not (self.opens <= local.time() < self.closes)

    def next_sending_time(self, instant: datetime) -> datetime:
        """`instant` itself if messages may go now, otherwise the next opening that is not
        on a Sunday."""
        if not self.is_quiet(instant):
            return instant
        local = instant.astimezone(PARIS)
        day = local.date() if local.time() < self.opens else local.date() + timedelta(days=1)
        while day.weekday() == SUNDAY:
            day += timedelta(days=1)
        return datetime.combine(day, self.opens, tzinfo=PARIS).astimezone(UTC)

    def latest_sending_time_before(self, instant: datetime) -> datetime:
        """`instant` if messages may go then; otherwise half an hour before the previous
        closing (Saturday instead of Sunday), so that a reminder comes early, not never."""
        if not self.is_quiet(instant):
            return instant
        local = instant.astimezone(PARIS)
        day = local.date() if local.time() >= self.closes else local.date() - timedelta(days=1)
        while day.weekday() == SUNDAY:
            day -= timedelta(days=1)
        closing = datetime.combine(day, self.closes, tzinfo=PARIS)
        return (closing - EARLY_MARGIN).astimezone(UTC)

    def describe(self) -> str:
        """ "9 h – 20 h" for pages that explain when messages leave."""
        return f"{self.ends} h – {self.starts} h"


def from_policy(stored: dict[str, Any] | None) -> QuietHours:
    stored = stored or {}
    return QuietHours(
        starts=int(stored.get("quiet_hours_start", DEFAULT_STARTS)),
        ends=int(stored.get("quiet_hours_end", DEFAULT_ENDS)),
    )


def load(session: Session) -> QuietHours:
    """The admin's window (one query); the programme's 09:00–20:00 until they change it."""
    return from_policy(settings_store.load(session, POLICY_SETTING_KEY))


DEFAULT = QuietHours()
