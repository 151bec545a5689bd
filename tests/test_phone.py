from __future__ import annotations

import pytest

from paris_avenir.kit.phone import InvalidPhoneNumber, format_for_display, mask, normalise_phone


@pytest.mark.parametrize(
    "typed",
    ["06 39 98 00 12", "0639980012", "+33 6 39 98 00 12", "0033639980012", "06.39.98.00.12"],
)
def test_the_fiction_range_is_accepted_in_every_usual_spelling(typed: str) -> None:
    assert normalise_phone(typed) == "+33639980012"


@pytest.mark.parametrize("typed", ["06 39 97 00 12", "12", "bonjour", "", "+33 6 39 98 00 1"])
def test_invalid_numbers_are_refused(typed: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_phone(typed)


def test_display_and_mask() -> None:
    assert format_for_display("+33639980012") == "06 39 98 00 12"
    masked = mask("+33639980012")
    assert masked.endswith("12") and "3998" not in masked
