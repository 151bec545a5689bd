"""How many SMS segments a text costs: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67).

One character outside the GSM-7 alphabet (a curly apostrophe, ê, any Arabic letter) turns
the whole message into UCS-2 and more than halves its room, so templates are checked here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table cost two septets (escape + character).
GSM7_EXTENSION = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsSize:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets or UTF-16 code units
    segments: int


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def measure(text: str) -> SmsSize:
    if is_gsm7(text):
        septets = sum(2 if char in GSM7_EXTENSION else 1 for char in text)
        segments = 1 if septets <= 160 else -(-septets // 153)
        return SmsSize("GSM-7", septets, segments)
    code_units = len(text.encode("utf-16-le")) // 2
    segments = 1 if code_units <= 70 else -(-code_units // 67)
    return SmsSize("UCS-2", code_units, segments)


# Latin letters and signs outside GSM-7 that have a close GSM-7 look-alike. A French SMS
# written with correct accents ("août", "bientôt", "ça", "l’ASE") would otherwise switch to
# UCS-2 and cost two or three times as much; the reader still understands "aout".
_GSM7_LOOKALIKES = str.maketrans(
    {
        "’": "'",
        "‘": "'",
        "«": '"',
        "»": '"',
        "“": '"',
        "”": '"',
        "\u00a0": " ",
        "\u202f": " ",
        "–": "-",
        "—": "-",
        "…": "...",
        "œ": "oe",
        "Œ": "OE",
        "ç": "c",
    }
)


def fit_gsm7(text: str) -> str:
    """The same text in GSM-7 if only accents and typographic signs stand in the way;
    any other text (Arabic, Tigrinya…) is returned unchanged, it needs UCS-2 anyway."""
    if is_gsm7(text):
        return text
    # An accented letter loses its accent: "ô" decomposes into "o" and a combining mark.
    candidate = "".join(
        char if is_gsm7(char) else unicodedata.normalize("NFD", char)[0]
        for char in text.translate(_GSM7_LOOKALIKES)
    )
    return candidate if is_gsm7(candidate) else text
