"""The aid catalogue: one module per aid, each with a `build()`."""

from __future__ import annotations

from collections.abc import Callable

from paris_avenir.aid_requests.kinds import (
    aide_urgence,
    allocation,
    bourse,
    garantie_fsl,
    guichet,
    logement,
    navigo,
    premier_emploi,
    psychologue,
)
from paris_avenir.aid_requests.kinds.base import AidKind
from paris_avenir.aid_requests.models import AidCode

BUILDERS: dict[AidCode, Callable[[], AidKind]] = {
    AidCode.ALLOCATION: allocation.build,
    AidCode.LOGEMENT: logement.build,
    AidCode.BOURSE: bourse.build,
    AidCode.NAVIGO: navigo.build,
    AidCode.PREMIER_EMPLOI: premier_emploi.build,
    AidCode.GARANTIE_FSL: garantie_fsl.build,
    AidCode.AIDE_URGENCE: aide_urgence.build,
    AidCode.PSYCHOLOGUE: psychologue.build,
    AidCode.GUICHET: guichet.build,
}


def kind(code: AidCode) -> AidKind:
    """The aid's description, in the current reader's language."""
    return BUILDERS[code]()


def all_kinds() -> list[AidKind]:
    return [build() for build in BUILDERS.values()]
