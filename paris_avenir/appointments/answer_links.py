""" "Je viendrai" / "Je ne peux pas venir": the short link in an appointment's confirmation
and reminders. It opens without a password, like the check-in (outreach/checkin.py), with
the same signed id (kit.crypto.signed_id: the appointment's 16 bytes, timestamped and
signed with the secret key), so that the SMS stays within its segments. It names one
appointment and works until that appointment starts; a forged, damaged or stale one names
nothing. What the answers do is in appointments/answers.py."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from paris_avenir.appointments.models import Appointment
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import id_from_signed, signed_id

SALT = "paris-avenir appointment answer"
PATH = "/r/"
# The signature's own limit, beyond the furthest appointment one may book (4 weeks for a
# youth, further for staff): the link really ends when the appointment starts.
LIFETIME = timedelta(days=120)


def link(appointment_id: uuid.UUID, *, secret_key: str, base_url: str) -> str:
    token = signed_id(appointment_id, secret_key=secret_key, salt=SALT)
    return f"{base_url.rstrip('/')}{PATH}{token}"


def default_secret_key() -> str:
    from paris_avenir.config import get_settings

    return get_settings().secret_key


def appointment_for(
    session: Session, token: str, *, secret_key: str, now: datetime | None = None
) -> Appointment | None:
    """The appointment the link names, while it has not started; None otherwise."""
    appointment_id = id_from_signed(token, secret_key=secret_key, salt=SALT, max_age=LIFETIME)
    if appointment_id is None:
        return None
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or appointment.starts_at <= (now or utcnow()):
        return None
    return appointment
