"""Separation of duties on grants, and its texts (the back office reads French).

- A grant above what the aid's parameters allow (the cap they give) is refused.
- A grant above the admin's threshold, or on a request that the same staff member filed in
  counter mode, needs a second person: a supervisor of the team, never the person who
  granted it (nor who filed it). instruction.py moves the request through "à confirmer".
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from paris_avenir.aid_requests.catalogue import DEFAULT_PARAMETERS
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.aid_requests.service import (
    RequestConflict,
    RequestError,
    aid_parameters,
    status_label,
)
from paris_avenir.kit import settings_store
from paris_avenir.kit.forms import format_euros_input
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.web import i18n

# The aid parameter (euro cents) that caps what may be granted. Aids missing here give no
# money: an amount is refused on them. The allocation's is a monthly amount.
AMOUNT_CAPS: dict[AidCode, str | None] = {
    AidCode.ALLOCATION: "monthly_amount_cents",
    AidCode.AIDE_URGENCE: "max_amount_cents",
    AidCode.BOURSE: None,  # money, without a cap among its parameters
    AidCode.GARANTIE_FSL: None,
}
# Above this amount (euro cents) a grant needs a second person; the admin sets it.
THRESHOLD_SETTING_KEY = "grant_confirmation_threshold_cents"
DEFAULT_CONFIRMATION_THRESHOLD_CENTS = 100_000
ABOVE_THRESHOLD = "above_threshold"
FILED_BY_SAME_STAFF = "filed_by_same_staff"


def staff_status_label(status: RequestStatus) -> str:
    """What the back office reads: the youth's words, except for a grant to confirm."""
    if status is RequestStatus.TO_CONFIRM:
        return i18n.gettext("Accord à confirmer")
    return status_label(status)


def confirmation_threshold(session: Session) -> int:
    stored = settings_store.load(session, THRESHOLD_SETTING_KEY)
    return int(stored) if isinstance(stored, int) else DEFAULT_CONFIRMATION_THRESHOLD_CENTS


def amount_cap(session: Session, code: AidCode) -> int | None:
    """The most that may be granted on this aid, in cents (None: no cap)."""
    key = AMOUNT_CAPS.get(code)
    if key is None:
        return None
    parameters = aid_parameters(session).get(code, {})
    value = parameters.get(key, DEFAULT_PARAMETERS[code].get(key))
    return int(value) if value is not None else None


def check_amount(session: Session, request: AidRequest, amount_cents: int | None) -> None:
    """Refuses an amount the aid's parameters do not allow (nothing is changed)."""
    if amount_cents is None:
        return
    if request.aid_code not in AMOUNT_CAPS:
        raise RequestError(
            i18n.gettext("Cette aide ne se donne pas en argent : laissez le montant vide.")
        )
    if amount_cents <= 0:
        raise RequestError(i18n.gettext("Le montant doit être plus grand que zéro."))
    cap = amount_cap(session, request.aid_code)
    if cap is not None and amount_cents > cap:
        raise RequestError(
            i18n.gettext(
                "Montant refusé : %(amount)s € dépasse le plafond de cette aide, "
                "%(cap)s € (paramètres de l’aide). Rien n’a été enregistré.",
                amount=format_euros_input(amount_cents),
                cap=format_euros_input(cap),
            )
        )


def confirmation_reasons(
    session: Session, request: AidRequest, staff: StaffUser, amount_cents: int | None
) -> list[str]:
    """Why this grant needs a second person (empty: it does not)."""
    reasons = []
    if amount_cents is not None and amount_cents > confirmation_threshold(session):
        reasons.append(ABOVE_THRESHOLD)
    if request.filed_by_staff_id is not None and request.filed_by_staff_id == staff.id:
        reasons.append(FILED_BY_SAME_STAFF)
    return reasons


def may_confirm(request: AidRequest, staff: StaffUser) -> bool:
    """A supervisor (of the team: the request is in their scope) who neither granted it
    nor filed it."""
    return (
        request.status is RequestStatus.TO_CONFIRM
        and staff.role is StaffRole.SUPERVISOR
        and staff.id != request.proposed_by_staff_id
        and staff.id != request.filed_by_staff_id
    )


def check_confirmer(request: AidRequest, staff: StaffUser) -> None:
    """Raises, with the reason in words, unless this staff member may confirm it now."""
    if may_confirm(request, staff):
        return
    if request.status is not RequestStatus.TO_CONFIRM:
        raise RequestConflict(already_done())
    if staff.role is StaffRole.SUPERVISOR:
        raise RequestError(
            i18n.gettext(
                "Vous ne pouvez pas confirmer un accord que vous avez donné vous-même, "
                "ni une demande que vous avez déposée : une autre personne doit le faire."
            )
        )
    raise RequestError(
        i18n.gettext("Seul·e un·e superviseur·e de l’équipe peut confirmer cet accord.")
    )


def already_done() -> str:
    return i18n.gettext("Cet accord a déjà été confirmé ou renvoyé.")
