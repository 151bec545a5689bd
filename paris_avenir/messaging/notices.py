"""The notices of the conversation with the référent (sent through notifications.notify)."""

from __future__ import annotations

import uuid

from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.notifications import Notice
from paris_avenir.web.i18n import N_


def new_message(*, thread_id: uuid.UUID, first_unread_id: uuid.UUID, base_url: str) -> Notice:
    """The référent wrote: one notice per batch (the key names the first unread message)."""
    return Notice(
        template="new_message",
        key=f"new-message:{thread_id}:{first_unread_id}",
        sms=sms_texts.NEW_MESSAGE,
        subject=N_("Nouveau message de votre référent"),
        text=N_(
            "Bonjour,\n\nVous avez un nouveau message de votre référent dans votre espace "
            "Paris avenir.\n\nLisez-le ici : %(link)s"
        ),
        values={"link": f"{base_url.rstrip('/')}/mon-espace/messages"},
    )
