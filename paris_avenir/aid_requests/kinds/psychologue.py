"""Suivi psychologique gratuit: nothing to fill in, an appointment to book."""

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
        code=AidCode.PSYCHOLOGUE,
        name=_("Parler à un psychologue"),
        gives=lambda _parameters: _(
            "Des rendez-vous gratuits avec un psychologue. "
            "C’est secret : votre référent ne le sait pas, sauf si vous le voulez."
        ),
        rule=rule,
        by_appointment=True,
        usual_delay=_("Un rendez-vous dans la semaine, le plus souvent."),
    )
