"""The one-click unsubscribe of outreach emails (RFC 8058): a signed, expiring link that
names the youth. A POST to it stops outreach emails without signing in — the mail
provider makes that POST, with no cookie — and a GET only shows a page with a button,
since mail scanners follow links."""

from __future__ import annotations

import uuid
from datetime import timedelta

from paris_avenir.kit.crypto import id_from_signed, signed_id

# Long enough for an email read weeks later; the link is refused afterwards (the youth can
# still stop the messages from their profile).
LIFETIME = timedelta(days=180)
SALT = "paris-avenir email unsubscribe"
OUTREACH_PREFIX = "outreach_"


def is_outreach(template: str) -> bool:
    """Messages the platform sends on its own to re-engage the youth (outreach/engine.py)."""
    return template.startswith(OUTREACH_PREFIX)


def link(youth_id: uuid.UUID, *, secret_key: str, base_url: str) -> str:
    token = signed_id(youth_id, secret_key=secret_key, salt=SALT)
    return f"{base_url.rstrip('/')}/desabonnement/{token}"


def youth_id_for(token: str, *, secret_key: str) -> uuid.UUID | None:
    """The youth the token names, or None when it is forged, damaged or expired."""
    return id_from_signed(token, secret_key=secret_key, salt=SALT, max_age=LIFETIME)
