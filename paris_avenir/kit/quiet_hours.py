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

from sqlalchemy.orm import Session

from paris_avenir.kit import settings_store
from paris_avenir.kit.dates import PARIS

SUNDAY = 6
# A reminder that would fall in quiet hours leaves this long before they start instead.
EARLY_MARGIN = timedelta(minutes=30)
# The admin edits the window with the rest of the outreach policy, stored under this key
# (outreach/policy.py owns the form; this module reads the two hours, as a lower layer that
# the outbox can use).
POLICY_SETTING_KEY = "outreach_policy"
DEFAULT_STARTS, DEFAULT_ENDS = 20, 9


@dataclass(frozen=True)
class QuietHours:
    """Quiet from `quiet_from` o'clock until `quiet_until` o'clock the next morning, and all
    Sunday; messages leave in between (the sending window opens at `quiet_until`)."""

    quiet_from: int = DEFAULT_STARTS
    quiet_until: int = DEFAULT_ENDS

    def __post_init__(self) -> None:
        if not 0 <= self.quiet_until < self.quiet_from <= 23:
            raise ValueError("the sending window must open before it closes, the same day")

    @property
    def window_opens(self) -> time:
        return time(self.quiet_until)

    @property
    def window_closes(self) -> time:
        return time(self.quiet_from)

    def is_quiet(self, instant: datetime) -> bool:
        local = instant.astimezone(PARIS)
        return local.weekday() == SUNDAY or not (
            self.window_opens <= local.time() < self.window_closes
        )

    def next_sending_time(self, instant: datetime) -> datetime:
        """`instant` itself if messages may go now, otherwise the next opening that is not
        on a Sunday."""
        if not self.is_quiet(instant):
            return instant
        local = instant.astimezone(PARIS)
        day = local.date() if local.time() < self.window_opens else local.date() + timedelta(days=1)
        while day.weekday() == SUNDAY:
            day += timedelta(days=1)
        return datetime.combine(day, self.window_opens, tzinfo=PARIS).astimezone(UTC)

    def latest_sending_time_before(self, instant: datetime) -> datetime:
        """`instant` if messages may go then; otherwise half an hour before the previous
        closing (Saturday instead of Sunday), so that a reminder comes early, not never."""
        if not self.is_quiet(instant):
            return instant
        local = instant.astimezone(PARIS)
        day = (
            local.date() if local.time() >= self.window_closes else local.date() - timedelta(days=1)
        )
        while day.weekday() == SUNDAY:
            day -= timedelta(days=1)
        closing = datetime.combine(day, self.window_closes, tzinfo=PARIS)
        return (closing - EARLY_MARGIN).astimezone(UTC)


def from_policy(stored: dict[str, Any] | None) -> QuietHours:
    stored = stored or {}
    return QuietHours(
        quiet_from=int(stored.get("quiet_hours_start", DEFAULT_STARTS)),
        quiet_until=int(stored.get("quiet_hours_end", DEFAULT_ENDS)),
    )


def load(session: Session) -> QuietHours:
    """The admin's window (one query); the programme's 09:00–20:00 until they change it."""
    return from_policy(settings_store.load(session, POLICY_SETTING_KEY))


DEFAULT = QuietHours()
