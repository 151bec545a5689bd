from __future__ import annotations

import pytest

from paris_avenir.messaging import texts
from paris_avenir.messaging.sms_segments import measure


def test_gsm7_counts_septets_and_the_extension_table_twice() -> None:
    assert measure("a" * 160).segments == 1
    assert measure("a" * 161).segments == 2
    assert measure("a" * 306).segments == 2 and measure("a" * 307).segments == 3
    assert measure("€" * 80).units == 160 and measure("€" * 80).segments == 1


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2() -> None:
    size = measure("Paris avenir : c’est ici")  # a curly apostrophe
    assert size.encoding == "UCS-2"
    assert measure("ا" * 70).segments == 1 and measure("ا" * 71).segments == 2
    assert measure("😀" * 35).units == 70  # surrogate pairs count twice


@pytest.mark.parametrize("code", ["000000", "123456", "999999"])
def test_the_french_sign_in_sms_fits_one_gsm7_segment(code: str) -> None:
    size = measure(texts.sign_in_code_sms(code, "fr"))
    assert size.encoding == "GSM-7"
    assert size.segments == 1
