"""Two SMS providers behind one SmsSender: the primary carries the traffic, the secondary
takes over when the primary's failures or slow sends pass a threshold, and the primary
gets it back after a healthy probation (docs/sms.md, "Second provider and failover").

Who decides: the outbox, in its own transactions (the sending threads never touch the
database). When it claims messages it asks `assign()` which provider each one goes to
(the decision is the database's, so every dispatcher of every instance agrees), and writes
that provider on the message before it leaves; when it records the answers it hands
`record()` each send's outcome and latency, kept in `sms_provider_sample`.

The exactly-once rule across a switch: a message is tied to the provider it was handed
to. Whether a retry or a crash, the next attempt first asks that provider (`find_sent_via`)
and only a "never got it" frees the message for the other provider; a provider that cannot
tell keeps the message waiting, never sent elsewhere on a guess. An error answer (a 5xx, a
refusal) or no connection at all says the provider did not take it: the message is free
at once (outbox clears its provider).

The rule of a switch (GOV.UK Notify's, in spirit: ≥ 15 % of SMS slow over 15 minutes):
- the active provider's sends since max(now − window, when it became active): at least
  `min_sends` of them and at least `threshold` of them failed or slow → the other one
  becomes active (unless it is itself as bad: then nothing changes);
- on the secondary, after `probation`: a share of new messages (`probe_percent`, chosen by
  their reference, so a message is a probe or not whoever decides) goes to the primary;
  once its probes since then are `min_sends` or more and under the threshold, the primary
  is active again; if they pass the threshold, the probation starts over.
A switch logs an operator alert and shows on /metrics (paris_avenir_sms_provider_active,
paris_avenir_sms_failover_switches).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paris_avenir.messaging.channels import (
    DeliveryError,
    OutcomeUnknown,
    PermanentFailure,
    SmsSender,
)
from paris_avenir.messaging.models import (
    OutboxMessage,
    OutboxStatus,
    SmsFailoverState,
    SmsProviderSample,
)
from paris_avenir.youths.models import Channel

if TYPE_CHECKING:
    from paris_avenir.config import Settings

logger = logging.getLogger(__name__)

STATE_KEY = "sms"
# The providers whose delivery receipts reach us (Brevo's webhook). A message sent through
# another one (Primotexto: no webhook) stays "sent": what waits for "delivered" must not
# read its silence as a failure (messaging.fallback, by `outbox_message.sms_provider`).
PROVIDERS_WITH_RECEIPTS = frozenset({"brevo"})
# Samples older than this are of no decision any more.
KEEP_SAMPLES = timedelta(days=1)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FailoverPolicy:
    threshold: float = 0.15
    window: timedelta = timedelta(minutes=15)
    slow: timedelta = timedelta(seconds=3)
    min_sends: int = 20
    probation: timedelta = timedelta(minutes=15)
    probe_percent: int = 10


@dataclass(frozen=True)
class Health:
    sends: int
    bad: int

    @property
    def rate(self) -> float:
        return self.bad / self.sends if self.sends else 0.0


@dataclass(frozen=True)
class Sample:
    """One send as a sending thread saw it (written by the outbox's record transaction)."""

    provider: str
    ok: bool
    latency: float  # seconds

    def slow(self, policy: FailoverPolicy) -> bool:
        return self.latency > policy.slow.total_seconds()


@dataclass(frozen=True)
class Sent:
    """A send's answer: the provider's id, or the error; and its sample either way."""

    provider_id: str | None
    sample: Sample
    error: DeliveryError | None = None


@dataclass(frozen=True)
class Routing:
    """What one claim decided: the active provider and whether the primary is probed."""

    active: str
    probing: bool


def _bad_reason(provider: str, health: Health) -> str:
    return f"{provider}: {health.bad} of {health.sends} sends failed or slow"


def counts_as_failure(error: DeliveryError) -> bool:
    """A provider's fault (5xx, timeout, refused request), not the recipient's number or the
    message (those would fail anywhere)."""
    return not error.permanent


def frees_message(error: DeliveryError) -> bool:
    """The provider certainly did not take the message: it may go elsewhere."""
    return not isinstance(error, OutcomeUnknown) and not isinstance(error, PermanentFailure)


class SmsFailover:
    def __init__(
        self,
        providers: dict[str, SmsSender],
        *,
        primary: str,
        secondary: str,
        policy: FailoverPolicy | None = None,
    ) -> None:
        self.providers = providers
        self.primary = primary
        self.secondary = secondary
        self.policy = policy or FailoverPolicy()

    @staticmethod
    def policy_of(settings: Settings) -> FailoverPolicy:
        return FailoverPolicy(
            threshold=settings.sms_failover_threshold_percent / 100,
            window=timedelta(seconds=settings.sms_failover_window_seconds),
            slow=timedelta(seconds=settings.sms_failover_slow_seconds),
            min_sends=settings.sms_failover_min_sends,
            probation=timedelta(seconds=settings.sms_failover_probation_seconds),
            probe_percent=settings.sms_failover_probe_percent,
        )

    def other(self, provider: str) -> str:
        return self.secondary if provider == self.primary else self.primary

    # --- SmsSender, for callers that do not route (a plain send goes to the primary) -----

    def send_sms(self, *, to: str, text: str, reference: str, tag: str) -> str | None:
        return self.providers[self.primary].send_sms(to=to, text=text, reference=reference, tag=tag)

    def find_sent(self, *, to: str, reference: str) -> str | None:
        return self.providers[self.primary].find_sent(to=to, reference=reference)

    # --- On a sending thread ------------------------------------------------------------

    def send_via(self, provider: str, *, to: str, text: str, reference: str, tag: str) -> Sent:
        """Send through this provider, timing it."""
        started = time.monotonic()
        try:
            provider_id = self.providers[provider].send_sms(
                to=to, text=text, reference=reference, tag=tag
            )
        except DeliveryError as error:
            elapsed = time.monotonic() - started
            return Sent(None, Sample(provider, not counts_as_failure(error), elapsed), error)
        return Sent(provider_id, Sample(provider, True, time.monotonic() - started))

    def find_sent_via(self, provider: str, *, to: str, reference: str) -> str | None:
        return self.providers[provider].find_sent(to=to, reference=reference)

    # --- In the outbox's claim transaction ----------------------------------------------

    def carries(self, provider: str, text: str) -> bool:
        accepts = getattr(self.providers[provider], "accepts", None)
        return accepts is None or bool(accepts(text))

    def routing(self, session: Session, now: datetime) -> Routing:
        """Judge the active provider on its recent sends and switch if the rule says so."""
        state = session.get(SmsFailoverState, STATE_KEY)
        active = state.active if state is not None else self.primary
        since = state.since if state is not None else EPOCH
        policy = self.policy
        if active == self.primary:
            health = self.health(session, active, max(now - policy.window, since), now)
            if self._bad(health):
                other = self.health(session, self.secondary, now - policy.window, now)
                if self._bad(other):
                    logger.error("operator alert: both SMS providers are failing")
                else:
                    active = self._switch(
                        session, state, self.secondary, _bad_reason(active, health), now
                    )
            return Routing(active, probing=False)
        # On the secondary: probing the primary once the probation is over.
        probe_from = since + policy.probation
        probing = now >= probe_from
        if probing:
            probes = self.health(session, self.primary, probe_from, now)
            if probes.sends >= policy.min_sends:
                if probes.rate < policy.threshold:
                    reason = f"{self.primary}: healthy probes ({probes.bad} of {probes.sends} bad)"
                    return Routing(self._switch(session, state, self.primary, reason, now), False)
                # Still failing: another probation.
                self._restart_probation(session, state, now)
                return Routing(active, probing=False)
        health = self.health(session, active, max(now - policy.window, since), now)
        if self._bad(health) and not probing:
            # The secondary fails too: back to the primary only if it is not worse.
            primary = self.health(session, self.primary, now - policy.window, now)
            if not self._bad(primary):
                reason = _bad_reason(active, health)
                active = self._switch(session, state, self.primary, reason, now)
        return Routing(active, probing)

    def assign(self, routing: Routing, reference: str, text: str) -> str:
        """The provider a message not yet tied to one goes to."""
        chosen = routing.active
        if routing.probing and self._is_probe(reference):
            chosen = self.primary
        if not self.carries(chosen, text):
            chosen = self.other(chosen)  # a text only one of them can carry stays there
        return chosen

    def _is_probe(self, reference: str) -> bool:
        digest = hashlib.sha256(reference.encode()).digest()
        return int.from_bytes(digest[:4], "big") % 100 < self.policy.probe_percent

    def _bad(self, health: Health) -> bool:
        return health.sends >= self.policy.min_sends and health.rate >= self.policy.threshold

    @staticmethod
    def health(session: Session, provider: str, start: datetime, now: datetime) -> Health:
        bad = (SmsProviderSample.ok.is_(False)) | SmsProviderSample.slow.is_(True)
        sends, bad_count = session.execute(
            select(func.count(), func.count().filter(bad)).where(
                SmsProviderSample.provider == provider,
                SmsProviderSample.occurred_at > start,
                SmsProviderSample.occurred_at <= now,
            )
        ).one()
        return Health(int(sends), int(bad_count))

    def _switch(
        self,
        session: Session,
        state: SmsFailoverState | None,
        to: str,
        reason: str,
        now: datetime,
    ) -> str:
        """Compare-and-set: of two dispatchers deciding at once, one switches; the other
        reads what the winner chose."""
        if state is None:
            try:
                with session.begin_nested():
                    session.add(
                        SmsFailoverState(
                            key=STATE_KEY,
                            active=to,
                            since=now,
                            version=1,
                            switch_count=1,
                            last_reason=reason,
                        )
                    )
            except IntegrityError:
                return self._reread(session)
        else:
            won = session.execute(
                update(SmsFailoverState)
                .where(
                    SmsFailoverState.key == STATE_KEY,
                    SmsFailoverState.version == state.version,
                )
                .values(
                    active=to,
                    since=now,
                    version=state.version + 1,
                    switch_count=state.switch_count + 1,
                    last_reason=reason,
                )
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if not won:
                return self._reread(session)
            session.expire(state)
        # For the operator: which way, and the figures (no recipient, no text).
        logger.error("operator alert: SMS provider switched to %s (%s)", to, reason)
        return to

    def _restart_probation(
        self, session: Session, state: SmsFailoverState | None, now: datetime
    ) -> None:
        if state is None:
            return
        session.execute(
            update(SmsFailoverState)
            .where(SmsFailoverState.key == STATE_KEY, SmsFailoverState.version == state.version)
            .values(since=now, version=state.version + 1)
            .execution_options(synchronize_session=False)
        )
        session.expire(state)
        logger.warning("SMS failover: %s still failing its probes, stays off", self.primary)

    def _reread(self, session: Session) -> str:
        session.expire_all()
        state = session.get(SmsFailoverState, STATE_KEY)
        return state.active if state is not None else self.primary

    # --- In the outbox's record transaction ---------------------------------------------

    def record(self, session: Session, samples: Iterable[Sample], now: datetime) -> None:
        rows = [
            SmsProviderSample(
                provider=sample.provider,
                occurred_at=now,
                ok=sample.ok,
                slow=sample.slow(self.policy),
                latency_ms=round(sample.latency * 1000),
            )
            for sample in samples
        ]
        if rows:
            session.add_all(rows)
            # Samples too old to weigh in any decision go (an indexed range, a few rows).
            session.execute(
                delete(SmsProviderSample).where(
                    SmsProviderSample.provider.in_({row.provider for row in rows}),
                    SmsProviderSample.occurred_at < now - KEEP_SAMPLES,
                )
            )


@dataclass(frozen=True)
class ProviderState:
    active: str
    switches: int


def state(session: Session, primary: str) -> ProviderState:
    row = session.get(SmsFailoverState, STATE_KEY)
    if row is None:
        return ProviderState(primary, 0)
    return ProviderState(row.active, row.switch_count)


def counts_by_provider(session: Session) -> dict[str, tuple[int, int]]:
    """SMS sent and failed for good, by the provider each message was handed to."""
    rows = session.execute(
        select(
            OutboxMessage.sms_provider,
            func.count(OutboxMessage.sent_at),
            func.count().filter(OutboxMessage.status == OutboxStatus.FAILED),
        )
        .where(OutboxMessage.channel == Channel.SMS, OutboxMessage.sms_provider.is_not(None))
        .group_by(OutboxMessage.sms_provider)
    )
    return {str(provider): (int(sent), int(failed)) for provider, sent, failed in rows}
