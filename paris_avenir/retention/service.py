"""Daily purge of what has served its purpose. A youth's file itself is never purged here:
its deletion goes through the référent (a task), who checks what the law requires to keep.

- sign-in codes and attempts: 30 days after they expired (long enough to investigate abuse);
  the rows that serialise the code limits, once no limit's window looks at them (24 hours);
- sessions: 30 days after they ended;
- login links, OIDC flows and staff activation links: 7 days after they expired;
- checked imports waiting for confirmation (an encrypted copy of the ASE file): once expired;
- the SMS provider's webhook events kept against replays: after 90 days (the provider
  retries a webhook for far less);
- outgoing SMS and email: their texts are erased as soon as they are final (the outbox does it
  when it sends; this catches what was cancelled in bulk), their address 90 days after they
  were written; the row stays (status history, statistics, exactly-once key);
- SMS replies waiting in the supervisors' queue (a number shared by several youths, or
  nobody's): discarded and their text erased after 30 days — what nobody could place in a
  month will not be placed, and a text from an unknown number must not wait for ever;
- audit entries: after the retention period the admin sets (audit.service, 12 months by
  default), through the database's purge function, the only way they can be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth import codes
from paris_avenir.auth.models import (
    LoginLink,
    OidcFlow,
    SignInAttempt,
    StaffActivation,
    UserSession,
)
from paris_avenir.db import utcnow
from paris_avenir.messaging import inbound
from paris_avenir.messaging.models import (
    InboundSms,
    InboundSmsStatus,
    OutboxMessage,
    OutboxStatus,
    ProviderEvent,
)
from paris_avenir.messaging.outbox import ERASED, ERASED_CONTENT
from paris_avenir.youths.import_models import ImportPreview

SIGN_IN_ATTEMPTS_KEPT = timedelta(days=30)
SESSIONS_KEPT = timedelta(days=30)
LINKS_KEPT = timedelta(days=7)
OUTBOX_ADDRESS_KEPT = timedelta(days=90)
PROVIDER_EVENTS_KEPT = timedelta(days=90)
INBOUND_SMS_WAITING_KEPT = timedelta(days=30)
FINAL_STATUSES = [
    OutboxStatus.SENT,
    OutboxStatus.DELIVERED,
    OutboxStatus.FAILED,
    OutboxStatus.CANCELLED,
]


@dataclass
class PurgeReport:
    sign_in_attempts: int
    sessions: int
    login_links: int
    oidc_flows: int
    outbox_contents: int
    outbox_addresses: int = 0
    audit_events: int = 0
    staff_activations: int = 0
    import_previews: int = 0
    provider_events: int = 0
    inbound_sms: int = 0


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def purge(session: Session, *, now: datetime | None = None) -> PurgeReport:
    now = now or utcnow()
    attempts = session.execute(
        delete(SignInAttempt).where(SignInAttempt.expires_at < now - SIGN_IN_ATTEMPTS_KEPT)
    )
    codes.purge_limit_locks(session, now=now)
    sessions = session.execute(
        delete(UserSession).where(
            or_(
                UserSession.expires_at < now - SESSIONS_KEPT,
                UserSession.revoked_at < now - SESSIONS_KEPT,
            )
        )
    )
    links = session.execute(delete(LoginLink).where(LoginLink.expires_at < now - LINKS_KEPT))
    flows = session.execute(delete(OidcFlow).where(OidcFlow.expires_at < now - LINKS_KEPT))
    activations = session.execute(
        delete(StaffActivation).where(StaffActivation.expires_at < now - LINKS_KEPT)
    )
    previews = session.execute(delete(ImportPreview).where(ImportPreview.expires_at < now))
    events = session.execute(
        delete(ProviderEvent).where(ProviderEvent.created_at < now - PROVIDER_EVENTS_KEPT)
    )
    # The texts are encrypted (no SQL comparison on them): content_erased_at says what is done.
    contents = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status.in_(FINAL_STATUSES),
            OutboxMessage.content_erased_at.is_(None),
        )
        .values(**ERASED_CONTENT, content_erased_at=now)
        .execution_options(synchronize_session=False)
    )
    addresses = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status.in_(FINAL_STATUSES),
            OutboxMessage.created_at < now - OUTBOX_ADDRESS_KEPT,
            OutboxMessage.recipient != ERASED,
        )
        .values(recipient=ERASED, last_error=None)
        .execution_options(synchronize_session=False)
    )
    unplaced = session.execute(
        update(InboundSms)
        .where(
            InboundSms.status == InboundSmsStatus.WAITING,
            InboundSms.received_at < now - INBOUND_SMS_WAITING_KEPT,
        )
        .values(
            status=InboundSmsStatus.DISCARDED,
            resolved_at=now,
            body=inbound.ERASED,
            candidate_ids=[],
        )
        .execution_options(synchronize_session=False)
    )
    audit_events = audit.purge(session, now=now)
    return PurgeReport(
        sign_in_attempts=_count(attempts),
        sessions=_count(sessions),
        login_links=_count(links),
        oidc_flows=_count(flows),
        outbox_contents=_count(contents),
        outbox_addresses=_count(addresses),
        audit_events=audit_events,
        staff_activations=_count(activations),
        import_previews=_count(previews),
        provider_events=_count(events),
        inbound_sms=_count(unplaced),
    )
