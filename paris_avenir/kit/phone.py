"""Phone numbers: parsed and validated by libphonenumber, stored in E.164.

Demo and test data use only 06 39 98 00 00 – 06 39 98 99 99, the French mobile range
reserved for fiction (it never reaches a real person). libphonenumber reports that range as
invalid, so it is accepted explicitly here, and nowhere else.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

FICTION_RANGE = re.compile(r"^\+3363998\d{4}$")


class InvalidPhoneNumber(ValueError):
    pass


def normalise_phone(raw: str, default_region: str = "FR") -> str:
    """The E.164 form of a number typed in national or international format."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber("not a phone number") from error
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(parsed) or FICTION_RANGE.match(e164):
        return e164
    raise InvalidPhoneNumber("not a valid phone number")


def is_fiction_number(e164: str) -> bool:
    return bool(FICTION_RANGE.match(e164))


# Pages show the same few numbers (the emergency lines, the référents') on every visit, and
# libphonenumber parses one in about 40 µs; a bounded cache of stored E.164 strings.
@lru_cache(maxsize=1024)
def format_for_display(e164: str) -> str:
    """06 39 98 00 12 for French numbers, the international form otherwise."""
    parsed = phonenumbers.parse(e164, None)
    if parsed.country_code == 33:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask(e164: str) -> str:
    """Enough to recognise one's own number, not enough to use it: +33 6 •• •• •• 12."""
    return f"{e164[:4]}•••••{e164[-2:]}" if len(e164) > 6 else "•••"
