"""A youth changes their phone number or email: a code goes to the new one, and nothing
changes until it comes back (the same codes as the sign-in, auth/codes.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth import codes
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import constant_time_equals, keyed_hash, new_numeric_code
from paris_avenir.kit.errors import DomainError
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.web.i18n import gettext
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Channel, ContactVerification, Youth

CONTACT_CODE_LIFETIME = timedelta(minutes=10)
CONTACT_MAX_TRIES = 5


class ContactError(DomainError):
    """The message is for the youth."""


def request_contact_change(
    session: Session,
    youth: Youth,
    *,
    secret_key: str,
    raw_value: str,
    reconfirm: bool = False,
    now: datetime | None = None,
) -> tuple[ContactVerification, OutboxMessage]:
    """Sends a code to the new number or email; nothing changes until it comes back.
    `reconfirm`: the youth's own number, flagged as not working, proven again the same way."""
    now = now or utcnow()
    try:
        destination = codes.parse_destination(raw_value)
    except codes.InvalidDestination:
        raise ContactError(
            gettext(
                "Ce n’est pas un numéro de téléphone ou un e-mail. "
                "Exemple : 06 12 34 56 78 ou prenom@exemple.fr"
            )
        ) from None
    current = youth.phone if destination.channel is Channel.SMS else youth.email
    if current == destination.value and not reconfirm:
        raise ContactError(gettext("C’est déjà votre numéro ou votre e-mail."))
    # One request at a time per youth (a row lock; SQLite's writers already queue), so that
    # parallel requests cannot all see fewer than 3 codes and all send one.
    session.execute(select(Youth.id).where(Youth.id == youth.id).with_for_update())
    recent = session.scalar(
        select(func.count())
        .select_from(ContactVerification)
        .where(
            ContactVerification.youth_id == youth.id,
            ContactVerification.created_at >= now - timedelta(minutes=15),
        )
    )
    if (recent or 0) >= 3:
        raise ContactError(gettext("Trop de codes demandés. Attendez 15 minutes, puis réessayez."))
    code = new_numeric_code()
    verification = ContactVerification(
        youth_id=youth.id,
        channel=destination.channel,
        new_value=destination.value,
        code_hash=keyed_hash(
            secret_key, f"{youth.id}:{destination.value}:{code}", purpose="contact"
        ),
        expires_at=now + CONTACT_CODE_LIFETIME,
    )
    session.add(verification)
    session.flush()
    message = codes.queue_code(
        session,
        youth=youth,
        channel=destination.channel,
        recipient=destination.value,
        code=code,
        template="contact_code",
        key=f"contact-code:{verification.id}",
        now=now,
    )
    return verification, message


def confirm_contact_change(
    session: Session, youth: Youth, *, secret_key: str, code: str, now: datetime | None = None
) -> Channel:
    now = now or utcnow()
    verification = session.scalar(
        select(ContactVerification)
        .where(ContactVerification.youth_id == youth.id, ContactVerification.consumed_at.is_(None))
        .order_by(ContactVerification.created_at.desc())
        .limit(1)
    )
    if (
        verification is None
        or verification.expires_at <= now
        or verification.wrong_tries >= CONTACT_MAX_TRIES
    ):
        raise ContactError(gettext("Ce code ne marche plus. Demandez un nouveau code."))
    candidate = keyed_hash(
        secret_key, f"{youth.id}:{verification.new_value}:{code.strip()}", purpose="contact"
    )
    # Tries and use are decided by the database: of parallel wrong codes each counts once,
    # and of parallel right ones exactly one changes the contact.
    if not constant_time_equals(candidate, verification.code_hash):
        session.execute(
            update(ContactVerification)
            .where(
                ContactVerification.id == verification.id,
                ContactVerification.wrong_tries < CONTACT_MAX_TRIES,
            )
            .values(wrong_tries=ContactVerification.wrong_tries + 1)
            .execution_options(synchronize_session=False)
        )
        raise ContactError(gettext("Ce code n’est pas le bon. Vérifiez le message reçu."))
    claimed = session.execute(
        update(ContactVerification)
        .where(
            ContactVerification.id == verification.id,
            ContactVerification.consumed_at.is_(None),
            ContactVerification.wrong_tries < CONTACT_MAX_TRIES,
            ContactVerification.expires_at > now,
        )
        .values(consumed_at=now)
        .returning(ContactVerification.id)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        raise ContactError(gettext("Ce code ne marche plus. Demandez un nouveau code."))
    verification.consumed_at = now
    if verification.channel is Channel.SMS:
        youth.phone = verification.new_value
        youth.phone_unreachable_at = None
        youth.phone_reported_wrong_at = None
    else:
        youth.email = verification.new_value
        youth.email_unreachable_at = None
    audit.record(
        session,
        "youth.contact_changed",
        actor_youth_id=youth.id,
        youth_id=youth.id,
        detail={"channel": verification.channel.value},
        now=now,
    )
    record_activity(session, youth, Activity.CONTACT_CHANGED, now)
    return verification.channel
