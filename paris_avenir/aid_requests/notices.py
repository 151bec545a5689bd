"""What the youth is told of a decision on their request (sent through notifications.notify)."""

from __future__ import annotations

import uuid

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import AidRequest, RequestStatus
from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.notifications import Detailed, Notice
from paris_avenir.web.i18n import N_

# One message per decision, saying which decision it is. Taking a request on is not a
# decision: the youth reads it in their space, and is not sent a second "du nouveau" before
# the answer.
TOLD = {
    RequestStatus.GRANTED: sms_texts.REQUEST_GRANTED,
    RequestStatus.REFUSED: sms_texts.REQUEST_REFUSED,
    RequestStatus.MISSING_DOCUMENTS: sms_texts.DOCUMENTS_AWAITED,
}
EMAIL_SUBJECTS = {
    RequestStatus.GRANTED: N_("Votre demande est acceptée"),
    RequestStatus.REFUSED: N_("Réponse à votre demande"),
    RequestStatus.MISSING_DOCUMENTS: N_("Il manque un document pour votre demande"),
}


def decision(request: AidRequest, *, event_id: uuid.UUID, base_url: str) -> Notice | None:
    """The notice of the decision the request is in; None when its status is not one.
    Under the admin's "Du nouveau sur une demande" text (template request_update) if any.
    The aid is named only to a youth who chose "messages détaillés"; never an amount."""
    sms = TOLD.get(request.status)
    if sms is None:
        return None
    link = f"{base_url.rstrip('/')}/mon-espace/demandes/{request.id}"
    if request.status is RequestStatus.MISSING_DOCUMENTS:
        # Straight to where the document is added; short, to keep the SMS to one segment.
        link = f"{base_url.rstrip('/')}/mon-espace/pieces"
    code = request.aid_code
    return Notice(
        template="request_update",
        key=f"request-update:{event_id}",
        sms=sms,
        subject=EMAIL_SUBJECTS[request.status],
        text=N_("Bonjour,\n\nVotre référent a répondu à votre demande.\n\nRegardez ici : %(link)s"),
        values={"link": link},
        detailed=Detailed(
            text=N_(
                "Bonjour,\n\nVotre référent a répondu à votre demande « %(aid)s ».\n\n"
                "Regardez ici : %(link)s"
            ),
            # The aid's name is read in the youth's language.
            values={"aid": lambda _language: catalogue.kind(code).name},
        ),
    )
