"""What the back office sends a youth (through notifications.notify): the invitation to
open their space, when an import creates them."""

from __future__ import annotations

import uuid

from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.notifications import Notice
from paris_avenir.web.i18n import N_


def invitation(*, youth_id: uuid.UUID, first_name: str, link: str) -> Notice:
    """Once per youth; `link` signs them in (14 days). The admin may rewrite its SMS."""
    return Notice(
        template="invitation",
        key=f"invitation:{youth_id}",
        sms=sms_texts.INVITATION,
        subject=N_("Votre espace Paris avenir est ouvert"),
        text=N_(
            "Bonjour %(name)s,\n\nVotre espace Paris avenir est ouvert. Vous y trouvez vos droits, "
            "vous pouvez demander une aide et écrire à votre référent.\n\nEntrez ici (lien valable "
            "14 jours) : %(link)s"
        ),
        values={"name": first_name, "link": link},
    )
