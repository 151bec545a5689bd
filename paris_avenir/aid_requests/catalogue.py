"""The aid catalogue's default parameters (PRODUCT.md); an admin may change them later."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import Aid, AidCode

# Amounts in euro cents; ages in years. The allocation equals the RSA base for one person
# (651.69 € a month since April 2026).
DEFAULT_PARAMETERS: dict[AidCode, dict[str, Any]] = {
    AidCode.ALLOCATION: {
        "monthly_amount_cents": 65169,
        "min_age": 18,
        "max_age": 25,
        "max_monthly_income_cents": 90000,
        "renewal_months": 6,
    },
    AidCode.BOURSE: {"min_age": 18, "max_age": 25},
    AidCode.LOGEMENT: {"min_age": 18, "max_age": 25},
    AidCode.GARANTIE_FSL: {"min_age": 18, "max_age": 25},
    AidCode.NAVIGO: {"min_age": 18, "max_age": 21},
    AidCode.PSYCHOLOGUE: {},
    AidCode.PREMIER_EMPLOI: {"min_age": 18, "max_age": 25},
    AidCode.GUICHET: {},
    AidCode.AIDE_URGENCE: {"max_amount_cents": 50000},
}


def ensure_catalogue(session: Session) -> int:
    """Insert the aids that are missing, leaving an admin's changes alone. Returns how many."""
    existing = set(session.scalars(select(Aid.code)))
    missing = [code for code in AidCode if code not in existing]
    session.add_all(Aid(code=code, parameters=dict(DEFAULT_PARAMETERS[code])) for code in missing)
    session.flush()
    return len(missing)
