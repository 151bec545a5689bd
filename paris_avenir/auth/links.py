"""Sign-in links for messages that invite a youth back (invitation, check-in): a random
token (only its hash is stored), short-lived and single use.

Opening the link shows a button; only pressing it signs in. Mail scanners and link
previews open links on their own, and must not burn (or use) the youth's link.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paris_avenir.auth.models import LoginLink
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import new_token, token_hash
from paris_avenir.youths.models import Youth

DEFAULT_LIFETIME = timedelta(days=3)


def create_login_link(
    session: Session,
    youth_id: uuid.UUID,
    *,
    purpose: str,
    base_url: str,
    lifetime: timedelta = DEFAULT_LIFETIME,
    now: datetime | None = None,
) -> str:
    now = now or utcnow()
    token = new_token()
    session.add(
        LoginLink(
            token_hash=token_hash(token),
            youth_id=youth_id,
            purpose=purpose,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return f"{base_url.rstrip('/')}/lien/{token}"


def usable_link(session: Session, token: str, *, now: datetime | None = None) -> LoginLink | None:
    now = now or utcnow()
    link = session.scalar(select(LoginLink).where(LoginLink.token_hash == token_hash(token)))
    if link is None or link.used_at is not None or link.expires_at <= now:
        return None
    return link


def consume_link(session: Session, token: str, *, now: datetime | None = None) -> Youth | None:
    """The link's youth, once: one conditional UPDATE marks the link used, so of 30
    requests with one link at the same moment exactly one gets a session."""
    now = now or utcnow()
    used = session.execute(
        update(LoginLink)
        .where(
            LoginLink.token_hash == token_hash(token),
            LoginLink.used_at.is_(None),
            LoginLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(LoginLink.youth_id)
    ).scalar_one_or_none()
    youth = session.get(Youth, used) if used is not None else None
    return youth if youth is not None and youth.deletion_requested_at is None else None
