"""Every SMS in every language: French and English in one GSM-7 segment, the others in at
most two UCS-2 segments, with links as long as the platform writes them; and every
discreet one (all but those marked `detailed`) without a word of the forbidden list
(tests/test_discreet_messages.py): no psychologist, ASE, aid's name or amount."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from paris_avenir.appointments.notices import format_day
from paris_avenir.appointments.service import format_when
from paris_avenir.kit.crypto import new_token
from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.sms_segments import fit_gsm7, measure
from paris_avenir.outreach import checkin
from paris_avenir.web import i18n
from tests.test_discreet_messages import leaks

# A long weekday and a long month in most languages: the worst case of a date in an SMS.
LONG_WHEN = datetime(2026, 9, 30, 14, 30, tzinfo=ZoneInfo("Europe/Paris"))
LANGUAGE_CODES = [code for code, _name in i18n.LANGUAGES]
SINGLE_GSM7_SEGMENT = {"fr", "en"}


def rendered(text: sms_texts.SmsText, language: str) -> str:
    values = dict(text.example)
    if "when" in values:
        values["when"] = format_when(LONG_WHEN, language)
    if "day" in values:  # the short date of the SMS with a one-tap link
        values["day"] = format_day(LONG_WHEN, language)
    # What the outbox stores and sends (accents folded to GSM-7 where that is enough).
    return fit_gsm7(sms_texts.render(text.text, language, **values))


@pytest.mark.parametrize("language", LANGUAGE_CODES)
@pytest.mark.parametrize("text", sms_texts.ALL, ids=lambda text: text.key)
def test_every_sms_fits_its_budget_in_every_language(
    text: sms_texts.SmsText, language: str
) -> None:
    body = rendered(text, language)
    size = measure(body)
    for value in text.example.values():
        if value.startswith("http"):
            assert value in body, "the link must be there, whole"
    if language in SINGLE_GSM7_SEGMENT:
        assert (size.encoding, size.segments) == ("GSM-7", 1), (body, size)
    else:
        assert i18n.is_translated(text.text, language), f"{text.key} has no {language} text"
        assert size.segments <= 2, (body, size)


@pytest.mark.parametrize("language", LANGUAGE_CODES)
@pytest.mark.parametrize(
    "text", [text for text in sms_texts.ALL if not text.detailed], ids=lambda text: text.key
)
def test_no_discreet_sms_says_a_forbidden_word(text: sms_texts.SmsText, language: str) -> None:
    body = rendered(text, language)
    assert not leaks(body, language), body


def test_the_example_links_are_as_long_as_the_real_ones() -> None:
    by_key = {text.key: text.example for text in sms_texts.ALL}
    base = sms_texts.EXAMPLE_BASE_URL
    check_in = checkin.link(uuid.uuid4(), secret_key="s" * 48, base_url=base)
    assert len(by_key["check_in"]["link"]) >= len(check_in)
    sign_in = f"{base}/lien/{new_token()}"
    assert len(by_key["invitation"]["link"]) >= len(sign_in)
    assert len(by_key["interview_invitation"]["link"]) >= len(sign_in)


def test_accents_are_folded_only_when_that_keeps_the_sms_in_gsm7() -> None:
    assert fit_gsm7("Bientôt le 5 août, l’ASE, ça") == "Bientot le 5 aout, l'ASE, ca"
    assert fit_gsm7("référent à côté") == "référent à coté"  # é and à are GSM-7
    arabic = "Paris avenir : موعدك"
    assert fit_gsm7(arabic) == arabic


def test_the_appointment_date_is_written_in_the_youths_language() -> None:
    assert format_when(LONG_WHEN, "fr") == "mercredi 30 septembre à 14:30"
    assert format_when(LONG_WHEN, "en").startswith("Wednesday 30 September")
    assert "سبتمبر" in format_when(LONG_WHEN, "ar")
