"""A staff member's own secrets: nobody else ever sees them.

- An admin (or `create-staff` without a password) creates an account with no password and
  no TOTP, and gets a one-time activation link (random token, only its hash stored, 72 h,
  single use: a conditional UPDATE claims it once). Whoever opens it chooses the password
  and enrols TOTP (the QR code and secret are on that page only).
- The password policy: 12 characters at least, not one of the common passwords of zxcvbn's
  frequency lists (the `zxcvbn` package, MIT licence; its lists come from leaked-password
  corpora), and not easily guessed (zxcvbn score 3 or more, the email and name counted as
  known to an attacker).
- From their account page, staff change their password (the current one required) and
  enrol a new TOTP secret (the current password and a code of the new secret required).
- Single sign-on binds an account by email only when the provider says the email is
  verified (`email_verified` true; absent is refused), and counts as two factors only when
  the provider asserts it (`acr`/`amr`, PARIS_AVENIR_OIDC_STAFF_MFA_ACR/_AMR); otherwise
  the account's TOTP code is asked after the return, in the same browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import pyotp
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn  # type: ignore[import-untyped]
from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

from paris_avenir.audit import service as audit
from paris_avenir.auth import sessions
from paris_avenir.auth.models import OidcFlow, StaffActivation, UserSession
from paris_avenir.auth.oidc import accepts_mfa
from paris_avenir.auth.staff_local import (
    claim_totp_step,
    hash_password,
    new_account,
    new_totp_secret,
    provisioning_uri,
    record_failure,
    totp_step,
    verify_password,
)
from paris_avenir.config import Settings
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import new_token, token_hash
from paris_avenir.kit.errors import DomainError
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.web.i18n import gettext

ACTIVATION_LIFETIME = timedelta(hours=72)
ACTIVATION_PATH = "/pro/activation/"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
MIN_SCORE = 3
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])


class AccountError(DomainError):
    """The message is for the person at the keyboard, in French."""


class LinkUsed(AccountError):
    """The activation link was used (perhaps a moment ago, from another tab) or expired."""

    status_code: ClassVar[int] = 410


class WrongCurrentPassword(AccountError):
    """A wrong current password on "Mon compte" counts as a failed sign-in: the request
    fails, but the count stays (the route keeps the transaction)."""


def _check_current_password(
    session: Session, staff: StaffUser, password: str, now: datetime
) -> None:
    """Someone holding an open session cannot try passwords without limit: the same counter
    as the sign-in, and at the lock every session of the account ends."""
    if verify_password(staff, password):
        return
    if record_failure(session, staff, now=now):
        _end_other_sessions(session, staff, None, now)
    raise WrongCurrentPassword(gettext("Le mot de passe actuel n’est pas le bon."))


def password_problem(password: str, *, email: str = "", full_name: str = "") -> str | None:
    """Why this password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return gettext(
            "Choisissez un mot de passe de %(count)s caractères au moins.",
            count=MIN_PASSWORD_LENGTH,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        return gettext(
            "Choisissez un mot de passe de %(count)s caractères au plus.",
            count=MAX_PASSWORD_LENGTH,
        )
    if password.lower() in COMMON_PASSWORDS or password.strip().lower() in COMMON_PASSWORDS:
        return gettext("Ce mot de passe fait partie des plus courants : choisissez-en un autre.")
    known = [part.lower() for part in (email, email.split("@")[0], *full_name.split()) if part]
    # zxcvbn looks at the first 100 characters, enough to judge.
    if zxcvbn(password[:100], user_inputs=known)["score"] < MIN_SCORE:
        return gettext(
            "Ce mot de passe est trop facile à deviner (mot courant, suite, votre nom…) : "
            "ajoutez des mots sans lien entre eux."
        )
    return None


def check_password(password: str, confirmation: str, *, staff: StaffUser) -> None:
    if password != confirmation:
        raise AccountError(gettext("Les deux mots de passe ne sont pas identiques."))
    problem = password_problem(password, email=staff.email, full_name=staff.full_name)
    if problem:
        raise AccountError(problem)


# --- Creation and activation -----------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    staff: StaffUser
    link: str
    expires_at: datetime


def issue_activation(
    session: Session,
    cipher: MultiFernet,
    staff: StaffUser,
    *,
    base_url: str,
    by: StaffUser | None,
    now: datetime | None = None,
) -> Invitation:
    """A new activation link for this account; any earlier unused one stops working."""
    now = now or utcnow()
    session.execute(
        update(StaffActivation)
        .where(StaffActivation.staff_id == staff.id, StaffActivation.used_at.is_(None))
        .values(expires_at=now)
    )
    token = new_token()
    activation = StaffActivation(
        staff_id=staff.id,
        token_hash=token_hash(token),
        totp_secret_encrypted=cipher.encrypt(new_totp_secret().encode()).decode(),
        created_by_id=by.id if by else None,
        expires_at=now + ACTIVATION_LIFETIME,
    )
    session.add(activation)
    session.flush()
    audit.record(
        session,
        "staff.activation_issued",
        actor_staff_id=by.id if by else None,
        object_type="staff_user",
        object_id=staff.id,
        now=now,
    )
    return Invitation(staff, base_url.rstrip("/") + ACTIVATION_PATH + token, activation.expires_at)


def invite_staff(
    session: Session,
    cipher: MultiFernet,
    *,
    email: str,
    full_name: str,
    role: StaffRole,
    team_name: str | None,
    base_url: str,
    by: StaffUser | None,
    now: datetime | None = None,
) -> Invitation:
    """A new account with no password and no TOTP, and its activation link."""
    try:
        staff = new_account(
            session, email=email, full_name=full_name, role=role, team_name=team_name
        )
    except ValueError as taken:
        raise AccountError(str(taken)) from None
    return issue_activation(session, cipher, staff, base_url=base_url, by=by, now=now)


def reset_secrets(
    session: Session,
    cipher: MultiFernet,
    staff: StaffUser,
    *,
    base_url: str,
    by: StaffUser,
    now: datetime | None = None,
) -> Invitation:
    """Lost password or phone: the admin clears both (the admin never sees either), ends
    the account's sessions and gives a new activation link."""
    now = now or utcnow()
    staff.password_hash = None
    staff.totp_secret_encrypted = None
    staff.totp_last_step = None
    sessions.revoke_all_for_staff(session, staff.id, now=now)
    audit.record(
        session,
        "staff.secrets_reset",
        actor_staff_id=by.id,
        object_type="staff_user",
        object_id=staff.id,
        now=now,
    )
    return issue_activation(session, cipher, staff, base_url=base_url, by=by, now=now)


@dataclass(frozen=True)
class PendingActivation:
    activation: StaffActivation
    staff: StaffUser
    secret: str

    @property
    def totp_uri(self) -> str:
        return provisioning_uri(self.secret, self.staff.email)


def pending_activation(
    session: Session, cipher: MultiFernet, token: str, *, now: datetime | None = None
) -> PendingActivation | None:
    """The activation behind a link, if it can still be used."""
    now = now or utcnow()
    row = session.execute(
        select(StaffActivation, StaffUser)
        .join(StaffUser, StaffUser.id == StaffActivation.staff_id)
        .where(StaffActivation.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    activation, staff = row
    if activation.used_at is not None or activation.expires_at <= now or not staff.is_active:
        return None
    try:
        secret = cipher.decrypt(activation.totp_secret_encrypted.encode()).decode()
    except InvalidToken:
        return None
    return PendingActivation(activation, staff, secret)


def activate(
    session: Session,
    cipher: MultiFernet,
    token: str,
    *,
    password: str,
    confirmation: str,
    totp_code: str,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> StaffUser:
    """Sets the password and TOTP chosen on the activation page; the link works once."""
    now = now or utcnow()
    pending = pending_activation(session, cipher, token, now=now)
    if pending is None:
        raise LinkUsed(used_link())
    check_password(password, confirmation, staff=pending.staff)
    step = totp_step(pending.secret, totp_code, now)
    if step is None:
        raise AccountError(
            gettext("Ce code ne correspond pas : vérifiez l’heure du téléphone et recommencez.")
        )
    claimed = session.execute(
        update(StaffActivation)
        .where(
            StaffActivation.id == pending.activation.id,
            StaffActivation.used_at.is_(None),
            StaffActivation.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise LinkUsed(used_link())
    pending.activation.used_at = now
    staff = pending.staff
    staff.password_hash = hash_password(password)
    staff.totp_secret_encrypted = pending.activation.totp_secret_encrypted
    staff.totp_last_step = step  # the enrolment code cannot sign in as well
    staff.failed_sign_in_count = 0
    staff.locked_until = None
    audit.record(
        session,
        "staff.activated",
        actor_staff_id=staff.id,
        object_type="staff_user",
        object_id=staff.id,
        ip_address=ip_address,
        now=now,
    )
    return staff


def used_link() -> str:
    return gettext(
        "Ce lien d’activation ne fonctionne plus (déjà utilisé, ou plus de 72 heures). "
        "Demandez-en un nouveau à un administrateur."
    )


# --- The staff member's own account page ------------------------------------------------


def change_password(
    session: Session,
    staff: StaffUser,
    *,
    current: str,
    new: str,
    confirmation: str,
    keep_token: str | None,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> None:
    """Current password required; the account's other sessions end."""
    now = now or utcnow()
    _check_current_password(session, staff, current, now)
    if new == current:
        raise AccountError(gettext("Choisissez un mot de passe différent de l’actuel."))
    check_password(new, confirmation, staff=staff)
    staff.password_hash = hash_password(new)
    _end_other_sessions(session, staff, keep_token, now)
    audit.record(
        session,
        "staff.password_changed",
        actor_staff_id=staff.id,
        object_type="staff_user",
        object_id=staff.id,
        ip_address=ip_address,
        now=now,
    )


def new_enrolment(staff: StaffUser) -> tuple[str, str]:
    """A fresh TOTP secret to enrol, and its provisioning URI (shown to them only)."""
    secret = new_totp_secret()
    return secret, provisioning_uri(secret, staff.email)


def reenrol_totp(
    session: Session,
    cipher: MultiFernet,
    staff: StaffUser,
    *,
    current_password: str,
    secret: str,
    totp_code: str,
    keep_token: str | None,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> None:
    """Replaces the TOTP secret, once a code of the new one and the password are right."""
    now = now or utcnow()
    _check_current_password(session, staff, current_password, now)
    try:
        pyotp.TOTP(secret).now()
    except (ValueError, TypeError):
        raise AccountError(gettext("Recommencez depuis la page « Mon compte ».")) from None
    step = totp_step(secret, totp_code, now)
    if step is None:
        raise AccountError(
            gettext("Ce code ne correspond pas : vérifiez l’heure du téléphone et recommencez.")
        )
    staff.totp_secret_encrypted = cipher.encrypt(secret.encode()).decode()
    staff.totp_last_step = step
    _end_other_sessions(session, staff, keep_token, now)
    audit.record(
        session,
        "staff.totp_reenrolled",
        actor_staff_id=staff.id,
        object_type="staff_user",
        object_id=staff.id,
        ip_address=ip_address,
        now=now,
    )


def _end_other_sessions(
    session: Session, staff: StaffUser, keep_token: str | None, now: datetime
) -> None:

    query = update(UserSession).where(
        UserSession.staff_id == staff.id, UserSession.revoked_at.is_(None)
    )
    if keep_token:
        query = query.where(UserSession.token_hash != token_hash(keep_token))
    session.execute(query.values(revoked_at=now, id_token=None))


# --- Single sign-on: verified email, and a second factor --------------------------------

SSO_TOTP_PATH = "/pro/connexion/oidc/code"
SSO_TOTP_LIFETIME = timedelta(minutes=5)


@dataclass(frozen=True)
class SsoOutcome:
    staff: StaffUser | None
    needs_totp: bool = False
    refusal: str | None = None  # in French, for the sign-in page
    reason: str = ""  # for the audit log


def _values(raw: str) -> set[str]:
    return {value.strip() for value in raw.split(",") if value.strip()}


def single_sign_on(
    session: Session,
    flow: OidcFlow,
    claims: dict[str, object],
    settings: Settings,
    *,
    id_token: str | None = None,
    now: datetime | None = None,
) -> SsoOutcome:
    """Who the provider's ID token names, and whether a TOTP code must follow (then the
    flow keeps the ID token until the code is typed)."""
    now = now or utcnow()
    subject = str(claims["sub"])
    staff = session.scalar(select(StaffUser).where(StaffUser.oidc_subject == subject))
    if staff is None:
        email = str(claims.get("email") or "").strip().lower()
        if email and claims.get("email_verified") is not True:
            return SsoOutcome(
                None,
                refusal=gettext(
                    "Votre fournisseur d’identité ne garantit pas votre adresse e-mail : "
                    "le compte ne peut pas être relié. Parlez-en à un administrateur."
                ),
                reason="email_not_verified",
            )
        if email:
            # First single sign-on of an account an admin created: bind it to the subject.
            staff = session.scalar(
                select(StaffUser).where(
                    func.lower(StaffUser.email) == email, StaffUser.oidc_subject.is_(None)
                )
            )
            if staff is not None:
                staff.oidc_subject = subject
    if staff is None or not staff.is_active:
        return SsoOutcome(
            None,
            refusal=gettext(
                "Aucun compte actif ne correspond. "
                "Demandez à un administrateur de créer votre compte."
            ),
            reason="no_account",
        )
    if accepts_mfa(
        claims,
        acr_values=_values(settings.oidc_staff_mfa_acr),
        amr_values=_values(settings.oidc_staff_mfa_amr),
    ):
        return SsoOutcome(staff)
    if staff.totp_secret_encrypted is None:
        return SsoOutcome(
            staff,
            refusal=gettext(
                "Votre fournisseur d’identité n’a pas confirmé un second facteur, et votre "
                "compte n’a pas encore d’application d’authentification. Activez votre compte "
                "avec le lien reçu, ou demandez-en un à un administrateur."
            ),
            reason="no_second_factor",
        )
    flow.pending_staff_id = staff.id
    flow.expires_at = now + SSO_TOTP_LIFETIME
    flow.id_token = id_token
    return SsoOutcome(staff, needs_totp=True)


def sso_waiting_for_totp(
    session: Session, browser_state: str | None, *, now: datetime | None = None
) -> tuple[OidcFlow, StaffUser] | None:
    """The single sign-on this browser started that waits for its TOTP code."""
    if not browser_state:
        return None
    now = now or utcnow()
    row = session.execute(
        select(OidcFlow, StaffUser)
        .join(StaffUser, StaffUser.id == OidcFlow.pending_staff_id)
        .where(OidcFlow.state_hash == token_hash(browser_state), OidcFlow.provider == "staff")
    ).first()
    if row is None:
        return None
    flow, staff = row
    if flow.expires_at <= now or flow.pending_staff_id is None:
        return None
    return flow, staff


class SsoTotpError(AccountError):
    def __init__(self, message: str, *, staff: StaffUser | None, can_retry: bool) -> None:
        super().__init__(message)
        self.staff = staff
        self.can_retry = can_retry


def finish_sso_with_totp(
    session: Session,
    cipher: MultiFernet,
    browser_state: str | None,
    code: str,
    *,
    now: datetime | None = None,
) -> tuple[StaffUser, str | None]:
    """The TOTP code after a single sign-on without a second factor; the flow ends once.
    The account, and the provider's ID token for its session."""
    now = now or utcnow()
    waiting = sso_waiting_for_totp(session, browser_state, now=now)
    expired = gettext("La connexion a expiré ou a déjà été utilisée. Recommencez.")
    if waiting is None:
        raise SsoTotpError(expired, staff=None, can_retry=False)
    flow, staff = waiting
    locked = staff.locked_until is not None and staff.locked_until > now
    if not staff.is_active or locked or staff.totp_secret_encrypted is None:
        raise SsoTotpError(
            gettext(
                "Connexion refusée : compte désactivé, ou bloqué après trop d’essais "
                "(réessayez dans 15 minutes)."
            ),
            staff=staff,
            can_retry=False,
        )
    try:
        secret = cipher.decrypt(staff.totp_secret_encrypted.encode()).decode()
    except InvalidToken:
        secret = ""
    step = totp_step(secret, code, now) if secret else None
    # The same counters as the password sign-in, decided by the database (raced).
    if step is None or not claim_totp_step(session, staff, step, now=now):
        locked_now = record_failure(session, staff, now=now)
        raise SsoTotpError(
            gettext("Code incorrect, ou déjà utilisé : tapez le code suivant de l’application."),
            staff=staff,
            can_retry=not locked_now,
        )
    claimed = session.execute(
        update(OidcFlow)
        .where(
            OidcFlow.id == flow.id,
            OidcFlow.pending_staff_id == staff.id,
            OidcFlow.expires_at > now,
        )
        .values(pending_staff_id=None)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise SsoTotpError(expired, staff=staff, can_retry=False)
    flow.pending_staff_id = None
    id_token, flow.id_token = flow.id_token, None
    staff.failed_sign_in_count = 0
    staff.last_sign_in_at = now
    return staff, id_token
