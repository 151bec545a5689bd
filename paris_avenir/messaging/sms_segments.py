"""How many SMS segments a text costs: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67).

One character outside the GSM-7 alphabet (a curly apostrophe, ê, any Arabic letter) turns
the whole message into UCS-2 and more than halves its room, so templates are checked here.
"""

from __future__ import annotations

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
