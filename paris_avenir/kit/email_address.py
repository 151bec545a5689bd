"""Email addresses: a light shape check (deliverability is proven by the code we send)."""

from __future__ import annotations

import re

EMAIL_SHAPE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class InvalidEmail(ValueError):
    pass


def normalise_email(raw: str) -> str:
    value = raw.strip().lower()
    if len(value) > 254 or not EMAIL_SHAPE.match(value):
        raise InvalidEmail("not an email address")
    return value


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}•••@{domain}"
