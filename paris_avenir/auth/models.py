from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum
from paris_avenir.kit.crypto import EncryptedText
from paris_avenir.youths.models import Channel


class SignInAttempt(RecordMixin, Base):
    """One request for a sign-in code. Unknown destinations get an attempt too (with no
    youth), so that nothing tells a known number from an unknown one."""

    __tablename__ = "sign_in_attempt"
    __table_args__ = (
        Index("ix_sign_in_attempt_destination_hash_created_at", "destination_hash", "created_at"),
        Index("ix_sign_in_attempt_ip_hash_created_at", "ip_hash", "created_at"),
    )

    # The browser holds the raw token in a cookie: the code only works in that browser.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    destination_hash: Mapped[str] = mapped_column(String(64))
    # What the code page shows ("06 •• •• •• 12"): enough to recognise, not to use.
    masked_destination: Mapped[str] = mapped_column(String(80))
    ip_hash: Mapped[str] = mapped_column(String(64))
    youth_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("youth.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wrong_tries: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_fallback_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInLimitLock(RecordMixin, Base):
    """One row per destination and per client address that asked for sign-in codes. A
    request locks its two rows (an upsert) before it counts the recent attempts and adds its
    own, so parallel requests for one number are counted one after the other: the limit is
    exact. `key_hash` is keyed like the attempt's hashes: no number or address in clear."""

    __tablename__ = "sign_in_limit_lock"

    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_request_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuthMethod(enum.StrEnum):
    CODE = "code"
    LINK = "lien"
    FRANCECONNECT = "franceconnect"
    PASSWORD_TOTP = "mot_de_passe_totp"  # noqa: S105 - a method name, not a password
    OIDC = "oidc"


class UserSession(RecordMixin, Base):
    """A server-side session: revocable, for a youth or a staff member."""

    __tablename__ = "user_session"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    youth_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    auth_method: Mapped[AuthMethod] = mapped_column(str_enum(AuthMethod, "auth_method"))
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A FranceConnect or single sign-on session: the provider's ID token, sent back as
    # `id_token_hint` when signing out so that the provider's session ends too (on a shared
    # phone, the next person must not be signed in as this one). Cleared on revocation.
    id_token: Mapped[str | None] = mapped_column(EncryptedText())


class LoginLink(RecordMixin, Base):
    """A single-use, short-lived link that signs a youth in (invitations, check-ins)."""

    __tablename__ = "login_link"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OidcFlow(RecordMixin, Base):
    """The state of one authorization-code flow, used once: state, nonce, PKCE verifier."""

    __tablename__ = "oidc_flow"

    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(20))  # franceconnect | staff
    purpose: Mapped[str] = mapped_column(String(20))  # sign_in | link
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(200))
    youth_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("youth.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Staff single sign-on without a multi-factor assertion: the account that still has to
    # type the platform's TOTP code (in the browser holding this flow's state cookie).
    pending_staff_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE")
    )
    # That account's ID token, until the code is typed and it moves to the session.
    id_token: Mapped[str | None] = mapped_column(EncryptedText())


class StaffActivation(RecordMixin, Base):
    """A one-time link for a new (or reset) staff account: the person who opens it chooses
    their password and enrols TOTP. Only the token's hash is stored; the TOTP secret it
    offers is encrypted at rest and shown on that page only."""

    __tablename__ = "staff_activation"

    staff_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    totp_secret_encrypted: Mapped[str] = mapped_column(String(255))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
