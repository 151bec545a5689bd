"""Accompagnement démarches: residence permit, nationality, civil status, health, appeals."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds.base import AidKind, Condition, always
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import Youth


def rule(_youth: Youth, _parameters: dict[str, Any], _today: date) -> list[Condition]:
    return [always(_("Vous avez un espace Paris avenir. C’est tout."))]


def build() -> AidKind:
    return AidKind(
        code=AidCode.GUICHET,
        name=_("Aide pour vos papiers"),
        gives=lambda _parameters: _(
            "Quelqu’un vous aide pour vos papiers : titre de séjour, nationalité, état civil, "
            "santé, recours."
        ),
        rule=rule,
        by_appointment=True,
        usual_delay=_("Un rendez-vous au guichet dans les 2 semaines."),
    )
