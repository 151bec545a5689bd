"""Parsing what people type: amounts in euros the French way, dates from date inputs."""

from __future__ import annotations

import re
from datetime import date

from babel.numbers import format_decimal

AMOUNT = re.compile(r"^\d{1,6}([.,]\d{1,2})?$")
MAX_CENTS = 10_000_000  # 100 000 €: anything above is a typing slip


def parse_euros(raw: str) -> int | None:
    """'651,69', '651.69', '1 200' or '0' → cents; None when it is not an amount."""
    cleaned = (
        raw.strip().replace("\u202f", "").replace("\u00a0", "").replace(" ", "").removesuffix("€")
    )
    if not AMOUNT.match(cleaned):
        return None
    whole, _, decimals = cleaned.replace(",", ".").partition(".")
    cents = int(whole) * 100 + int((decimals + "00")[:2])
    return cents if cents <= MAX_CENTS else None


def format_euros_input(cents: int) -> str:
    whole, rest = divmod(cents, 100)
    return f"{whole},{rest:02d}" if rest else str(whole)


def parse_date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def format_euros(cents: int) -> str:
    """651,69 € with French grouping: amounts are always shown concrete."""
    whole, rest = divmod(int(cents), 100)
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{grouped},{rest:02d}\u00a0€"


def french_number(value: float, digits: int = 1) -> str:
    """2.5 → "2,5", 1234 → "1 234": numbers on staff pages are written the French way."""
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    return format_decimal(round(value, digits), pattern, locale="fr_FR")
