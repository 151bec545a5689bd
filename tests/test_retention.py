"""The daily purge forgets what has served its purpose and nothing else."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.auth import links, sessions
from paris_avenir.auth.models import (
    AuthMethod,
    LoginLink,
    SignInAttempt,
    StaffActivation,
    UserSession,
)
from paris_avenir.config import Settings
from paris_avenir.db import utcnow
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import build_channels
from paris_avenir.messaging.models import (
    InboundSms,
    InboundSmsStatus,
    OutboxMessage,
    OutboxStatus,
    ProviderEvent,
)
from paris_avenir.messaging.outbox import ERASED
from paris_avenir.retention.service import purge
from paris_avenir.staff.models import StaffRole
from paris_avenir.youths.import_models import ImportPreview
from paris_avenir.youths.models import Channel
from tests import factories
from tests.factories import create_staff, create_youth

SECRET = "test-secret-key-for-retention-0123456789"


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_purge_forgets_expired_credentials_and_old_message_contents(
    session: Session,
) -> None:
    now = utcnow()
    long_ago = now - timedelta(days=130)  # a youth session lives 90 days, then 30 kept
    youth = create_youth(session, phone="+33639980042")
    # A sign-in code from 130 days ago and one from today.
    factories.request_code(
        session, secret_key=SECRET, raw_destination="06 39 98 00 42", ip_address="1", now=long_ago
    )
    factories.request_code(
        session, secret_key=SECRET, raw_destination="06 39 98 00 42", ip_address="1", now=now
    )
    old_session = sessions.start_session(
        session, youth_id=youth.id, method=AuthMethod.CODE, now=long_ago
    )
    live_session = sessions.start_session(
        session, youth_id=youth.id, method=AuthMethod.CODE, now=now
    )
    base = "http://test"
    links.create_login_link(session, youth.id, purpose="activation", base_url=base, now=long_ago)
    fresh_url = links.create_login_link(
        session, youth.id, purpose="activation", base_url=base, now=now
    )
    old_sent, old_queued, recent_sent = (
        outbox.enqueue(
            session,
            channel=Channel.SMS,
            recipient="+33639980042",
            template="test",
            body_text="Votre code : 123456",
            idempotency_key=key,
            youth_id=youth.id,
            now=when,
        )
        for key, when in (("old", long_ago), ("stuck", long_ago), ("recent", now))
    )
    for message in (old_sent, recent_sent):
        message.status = OutboxStatus.SENT
    for message, when in ((old_sent, long_ago), (old_queued, long_ago), (recent_sent, now)):
        message.created_at = when
    session.commit()

    report = purge(session, now=now)
    session.commit()

    assert report.sign_in_attempts == 1 and _count(session, SignInAttempt) == 1
    assert report.sessions == 1
    assert sessions.find_active(session, live_session.token, now=now) is not None
    assert sessions.find_active(session, old_session.token, now=now) is None
    assert report.login_links == 1
    assert links.usable_link(session, fresh_url.rsplit("/", 1)[1], now=now) is not None
    assert _count(session, LoginLink) == 1 and _count(session, UserSession) == 1
    # Final messages lose their texts (no code left), whatever their age; the old one its
    # number too; their rows and statuses remain.
    assert report.outbox_contents == 2 and report.outbox_addresses == 1
    session.expire_all()
    assert session.get_one(OutboxMessage, old_sent.id).body_text == ERASED
    assert session.get_one(OutboxMessage, old_sent.id).recipient == ERASED
    assert session.get_one(OutboxMessage, old_sent.id).status is OutboxStatus.SENT
    assert session.get_one(OutboxMessage, recent_sent.id).body_text == ERASED
    assert session.get_one(OutboxMessage, recent_sent.id).content_erased_at == now
    # Still to send (however old): untouched; a recent number stays for its receipts.
    assert session.get_one(OutboxMessage, old_queued.id).body_text == "Votre code : 123456"
    assert session.get_one(OutboxMessage, recent_sent.id).recipient == "+33639980042"
    # A second run finds nothing more to do.
    again = purge(session, now=now)
    assert again.outbox_contents == 0 and again.outbox_addresses == 0


def test_the_scheduler_runs_the_purge_every_night(settings: Settings, tmp_path: Path) -> None:
    from paris_avenir.scheduler import build_scheduler

    scheduler = build_scheduler(settings, sessionmaker(), build_channels(settings))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {
        "outbox",
        "outreach",
        "follow_up_interviews",
        "retention_purge",
        "document_sweep",
        "delivery_fallback",
    }
    assert str(jobs["retention_purge"].trigger) == "cron[hour='3', minute='30']"


def test_the_purge_forgets_expired_activations_checked_imports_and_old_webhook_events(
    session: Session,
) -> None:
    now = utcnow()
    admin = create_staff(session, StaffRole.ADMIN)
    newcomer = create_staff(session)
    for expires_at in (now - timedelta(days=8), now + timedelta(days=2)):
        session.add(
            StaffActivation(
                staff_id=newcomer.id,
                token_hash=uuid.uuid4().hex,
                totp_secret_encrypted="chiffré",
                created_by_id=admin.id,
                expires_at=expires_at,
            )
        )
    for expires_at in (now - timedelta(minutes=1), now + timedelta(minutes=20)):
        session.add(
            ImportPreview(
                staff_id=admin.id,
                token_hash=uuid.uuid4().hex,
                content_sha256="0" * 64,
                plan_digest="0" * 64,
                content_encrypted="chiffré",
                expires_at=expires_at,
            )
        )
    for age in (timedelta(days=91), timedelta(days=1)):
        session.add(ProviderEvent(event_key=uuid.uuid4().hex, event="stop", created_at=now - age))
    session.commit()

    report = purge(session, now=now)
    session.commit()

    assert (report.staff_activations, report.import_previews, report.provider_events) == (1, 1, 1)
    # What may still serve stays: a link not yet expired, a check still to confirm, the
    # recent events a replay would be compared with.
    assert session.scalars(select(StaffActivation.expires_at)).all() == [now + timedelta(days=2)]
    assert session.scalars(select(ImportPreview.expires_at)).all() == [now + timedelta(minutes=20)]
    assert _count(session, ProviderEvent) == 1


def test_an_sms_reply_nobody_placed_in_30_days_is_discarded_and_its_text_erased(
    session: Session,
) -> None:
    """The supervisors' queue (a number shared by several youths, or nobody's) does not keep
    a text for ever: after 30 days unplaced it is discarded, its text and candidates gone."""
    now = utcnow()
    youth = create_youth(session)
    for days in (31, 29):
        session.add(
            InboundSms(
                received_at=now - timedelta(days=days),
                sender_last_digits="42",
                body=f"Bonjour, c'est moi ({days})",
                candidate_ids=[str(youth.id)],
            )
        )
    session.commit()

    report = purge(session, now=now)
    session.commit()

    assert report.inbound_sms == 1
    items = {
        item.body: item.status
        for item in session.scalars(select(InboundSms).order_by(InboundSms.received_at))
    }
    assert items == {
        "": InboundSmsStatus.DISCARDED,
        "Bonjour, c'est moi (29)": InboundSmsStatus.WAITING,
    }
    old = session.scalars(
        select(InboundSms).where(InboundSms.status == InboundSmsStatus.DISCARDED)
    ).one()
    assert old.candidate_ids == [] and old.resolved_at is not None
