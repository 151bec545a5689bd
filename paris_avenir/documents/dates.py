"""Dates a youth types on a phone: three small boxes (day, month, year) rather than the
browser's date widget, which is tiny, reads "mm/dd/yyyy" and differs on every phone.

A date arrives as three fields `<name>_jour`, `<name>_mois`, `<name>_annee`, or as one
field `<name>` written 31/12/2030 or 2030-12-31 (older forms, counter mode)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

PARTS = ("jour", "mois", "annee")
_FRENCH = re.compile(r"^(\d{1,2})[/.\- ](\d{1,2})[/.\- ](\d{4})$")


def typed(form: Mapping[str, Any], name: str) -> str:
    """What the youth typed, as one text ("31/12/2030"), or "" when nothing was typed."""
    parts = [str(form.get(f"{name}_{part}", "") or "").strip() for part in PARTS]
    if any(parts):
        return "/".join(parts)
    return str(form.get(name, "") or "").strip()


def parse(text: str) -> date | None:
    """31/12/2030, 31-12-2030 or 2030-12-31 → the date; None when it is not a real date."""
    text = text.strip()
    match = _FRENCH.match(text)
    try:
        if match:
            day, month, year = (int(group) for group in match.groups())
            return date(year, month, day)
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
