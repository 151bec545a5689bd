"""Discreet messages: what a lock screen or a shared phone shows never says "psychologue",
"ASE", an aid's name or an amount, in any of the six languages, unless the youth chose
"messages détaillés" on their profile (and even then no amount in an SMS). The sender names
are neutral too. The forbidden words are here, translated; every discreet SMS and email
(subject, text and HTML, and the calendar file of an appointment) is rendered with
realistic values — an aid's name, an amount, a psychologist appointment — and searched."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import notices as request_notices
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.appointments import notices as appointment_notices
from paris_avenir.appointments import service as appointments
from paris_avenir.appointments.models import Appointment, AppointmentKind
from paris_avenir.appointments.service import format_when
from paris_avenir.audit.models import AuditEvent
from paris_avenir.config import Settings
from paris_avenir.messaging import message_templates, notifications, sms_texts, texts
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.messaging.notifications import Notice
from paris_avenir.messaging.sms_segments import fit_gsm7
from paris_avenir.outreach import notices as outreach_notices
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff.models import StaffRole
from paris_avenir.web import i18n
from paris_avenir.youths.models import Channel, Youth
from tests.factories import assign, create_appointment, create_staff, create_youth
from tests.helpers import post_form, sign_in_as
from tests.test_notices import NOTICES as EVERY_NOTICE

LANGUAGES = [code for code, _name in i18n.LANGUAGES]
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # Wednesday 11:00 in Paris
BASE_URL = "https://paris-avenir.example.org"

# What a discreet message never says, in every language the platform writes. Latin words
# are matched as whole words (ASE, not "base"); the others as they are written.
FORBIDDEN_WORDS: dict[str, tuple[str, ...]] = {
    "fr": (
        "psychologue",
        "psychologique",
        "psy",
        "ASE",
        "aide sociale à l’enfance",
        "aide sociale à l'enfance",
        "protection de l’enfance",
        "allocation",
        "Navigo",
        "bourse",
        "FSL",
        "logement social",
        # A residence permit on a shared phone's lock screen says more than a date.
        "titre de séjour",
        "récépissé",
    ),
    "en": (
        "psychologist",
        "psychological",
        "psychology",
        "therapist",
        "child welfare",
        "child protection",
        "allowance",
        "bursary",
        "scholarship",
        "social housing",
        "residence permit",
    ),
    "ar": (
        "إقامة",
        "إقامتك",
        "أخصائي نفسي",
        "نفسية",
        "نفساني",
        "رعاية الطفولة",
        "حماية الطفولة",
        "منحة",
    ),
    "fa_AF": ("اقامت", "روانشناس", "روان‌شناس", "روانی", "حمایت اطفال", "کمک مالی"),
    "ps": ("د اوسېدو", "د اوسیدو", "ارواپوه", "رواني", "د ماشومانو د ساتنې", "مرستې پیسې"),
    "ti": ("ፍቓድ መንበሪ", "ስነ-ኣእምሮ", "ስነ ኣእምሮ", "ሓልዮት ህጻናት", "ሓገዝ ገንዘብ"),
}
# An amount in any script: digits (also Arabic-Indic, which \d matches) then a currency.
AMOUNT = re.compile(r"\d[\d\s.,\u00a0\u202f]*(€|euros?\b|EUR\b|یورو|يورو|ዩሮ)|€", re.IGNORECASE)
# Realistic values: what a youth's file really holds, that must not leak into the words.
AMOUNT_GRANTED = "651,69 €"
PSYCHOLOGIST_ADDRESS = "12 rue Ordener, 75018 Paris"


def _aid_names(language: str) -> set[str]:
    with i18n.using_locale(language):
        return {str(kind.name) for kind in catalogue.all_kinds()}


def _words_in(language: str) -> list[str]:
    """Every language's forbidden words (a youth reading Dari may receive French where a
    text is not translated yet), and the aid names in that language and in French."""
    words = {word for group in FORBIDDEN_WORDS.values() for word in group}
    return sorted(words | _aid_names(language) | _aid_names("fr"))


def leaks(text: str, language: str) -> list[str]:
    """The forbidden words and amounts found in `text` (empty: discreet)."""
    found = []
    for word in _words_in(language):
        if word.isascii():
            if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE):
                found.append(word)
        elif word.casefold() in text.casefold():
            found.append(word)
    found += [match.group(0) for match in AMOUNT.finditer(text)]
    return found


def test_the_forbidden_list_finds_what_it_is_for() -> None:
    """The test cannot pass by finding nothing: each kind of leak is caught."""
    assert leaks("Paris avenir : RDV psychologue demain", "fr") == ["psychologue"]
    assert leaks("Votre demande « Passe Navigo gratuit » est acceptée", "fr")
    assert leaks("versement de 651,69 € le 5", "fr") == ["651,69 €"]
    assert leaks("versement de 300 euros", "fr") == ["300 euros"]
    assert leaks("l’ASE vous écrit", "fr") == ["ASE"]
    assert not leaks("la base de données, le cas", "fr")  # whole words only
    assert leaks("موعد مع أخصائي نفسي", "ar")
    assert leaks("ملاقات با روانشناس", "fa_AF")
    assert leaks("له ارواپوه سره", "ps")
    assert leaks("ምስ ክኢላ ስነ-ኣእምሮ", "ti")
    with i18n.using_locale("ar"):
        arabic_aid = str(catalogue.kind(AidCode.PSYCHOLOGUE).name)
    assert leaks(f"طلبك «{arabic_aid}»", "ar")


# --- Every SMS text, in every language -----------------------------------------------------

LONG_WHEN = datetime(2026, 9, 30, 14, 30, tzinfo=UTC)


def _sms(text: sms_texts.SmsText, language: str) -> str:
    values = dict(text.example)
    if "when" in values:
        values["when"] = format_when(LONG_WHEN, language)
    return fit_gsm7(sms_texts.render(text.text, language, **values))


DISCREET_SMS = [text for text in sms_texts.ALL if not text.detailed]
DETAILED_SMS = [text for text in sms_texts.ALL if text.detailed]
# Every SMS text is measured and searched in tests/test_sms_texts.py (its segments, and
# `leaks` for the discreet ones); here, what the detailed ones may say.


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("text", DETAILED_SMS, ids=lambda text: text.key)
def test_a_detailed_sms_may_name_the_aid_never_an_amount(
    text: sms_texts.SmsText, language: str
) -> None:
    body = _sms(text, language)
    assert not AMOUNT.search(body), body
    # Each detailed text has a discreet twin that every other youth receives.
    # (one twin may serve a family: paper_expiry_permit and _identity → paper_expiry_discreet)
    twins = {f"{text.key}_discreet", f"{text.key.rsplit('_', 1)[0]}_discreet"}
    assert twins & {other.key for other in DISCREET_SMS}


# --- Every notice, with realistic values, on both channels ---------------------------------


def _psychologist_appointment() -> Appointment:
    return Appointment(
        id=uuid.uuid4(),
        kind=AppointmentKind.PSYCHOLOGIST,
        starts_at=datetime(2026, 12, 9, 13, 30, tzinfo=UTC),
        address=PSYCHOLOGIST_ADDRESS,
    )


def _calendar() -> tuple[str, str, str]:
    return ("rendez-vous.ics", "text/calendar", "BEGIN:VCALENDAR")


def _attempt(reason: OutreachReason) -> OutreachAttempt:
    return OutreachAttempt(id=uuid.uuid4(), reason=reason, step=1, channel=Channel.SMS)


def realistic_notices() -> dict[str, Notice]:
    """The notices whose file holds what must not leak: a psychologist appointment, an
    allocation granted with its amount, a Navigo refused, the allocation renewal."""
    appointment = _psychologist_appointment()
    found: dict[str, Notice | None] = {
        "psychologist_confirmation": appointment_notices.confirmation(
            appointment, base_url=BASE_URL, calendar=_calendar
        ),
        "psychologist_cancellation": appointment_notices.cancellation(
            appointment, base_url=BASE_URL, calendar=_calendar
        ),
        "psychologist_reminder": appointment_notices.reminder(
            appointment, hours=2, base_url=BASE_URL, send_at=NOW, expires_at=NOW
        ),
        "follow_up_interview": appointment_notices.interview_invitation(
            key="follow-up-interview:test", link=f"{BASE_URL}/lien/abc"
        ),
    }
    for code in AidCode:
        for status in request_notices.TOLD:
            request = AidRequest(
                id=uuid.uuid4(), aid_code=code, status=status, granted_amount_cents=65169
            )
            found[f"request:{code.value}:{status.value}"] = request_notices.decision(
                request, event_id=uuid.uuid4(), base_url=BASE_URL
            )
    for reason in OutreachReason:
        found[f"outreach:{reason.value}"] = outreach_notices.for_attempt(
            Youth(first_name="Zoé"), _attempt(reason), base_url=BASE_URL, link=f"{BASE_URL}/p/a"
        )
    notices = {name: notice for name, notice in found.items() if notice is not None}
    # And every notice the platform has (tests/test_notices.py lists them all).
    notices.update({f"every:{name}": notice for name, notice in EVERY_NOTICE.items()})
    return notices


NOTICES = realistic_notices()


def _email_parts(subject: str, text: str, language: str) -> list[str]:
    html = texts.html_from_text(subject, text, language, unsubscribe_url=f"{BASE_URL}/stop/x")
    return [subject, text, html]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", sorted(NOTICES))
def test_no_discreet_notice_says_a_forbidden_word(name: str, language: str) -> None:
    words = notifications.render(NOTICES[name], language)
    for part in [fit_gsm7(words.sms), *_email_parts(words.subject, words.text, language)]:
        assert not leaks(part, language), part


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_security_messages_are_discreet_too(language: str) -> None:
    """Sign-in codes have no detailed words: the only text is the discreet one."""
    assert not leaks(texts.sign_in_code_sms("482913", language), language)
    email = texts.sign_in_code_email("482913", language)
    for part in (email.subject, email.text, email.html):
        assert not leaks(part, language), part
    for key in ("phone_changed", "email_changed"):
        text = next(text for text in sms_texts.ALL if text.key == key)
        assert not leaks(_sms(text, language), language)


def test_a_detailed_youth_reads_the_aid_a_discreet_one_does_not() -> None:
    request = AidRequest(
        id=uuid.uuid4(), aid_code=AidCode.PSYCHOLOGUE, status=RequestStatus.GRANTED
    )
    notice = request_notices.decision(request, event_id=uuid.uuid4(), base_url=BASE_URL)
    assert notice is not None
    for language in LANGUAGES:
        with i18n.using_locale(language):
            aid = str(catalogue.kind(AidCode.PSYCHOLOGUE).name)
        detailed = notifications.render(notice, language, detailed=True)
        discreet = notifications.render(notice, language)
        assert aid in detailed.text
        assert aid not in discreet.text
        assert not AMOUNT.search(detailed.sms + detailed.text)
    renewal = outreach_notices.for_attempt(
        Youth(first_name="Zoé"), _attempt(OutreachReason.ALLOCATION_RENEWAL), base_url=BASE_URL
    )
    detailed = notifications.render(renewal, "fr", detailed=True)
    assert "allocation" in detailed.sms
    assert detailed.sms.endswith("/mon-espace/droits/allocation")
    assert notifications.render(renewal, "fr").sms.endswith("/mon-espace/droits")


# --- Through the outbox: the youth's choice decides ----------------------------------------


def test_the_outbox_carries_the_words_of_the_youths_choice(session: Session) -> None:
    discreet = create_youth(session, preferred_channel=Channel.EMAIL)
    detailed = create_youth(session, preferred_channel=Channel.EMAIL, detailed_messages=True)
    assert discreet.detailed_messages is False  # the default, without asking
    request = AidRequest(id=uuid.uuid4(), aid_code=AidCode.NAVIGO, status=RequestStatus.GRANTED)
    for youth in (discreet, detailed):
        notice = request_notices.decision(request, event_id=uuid.uuid4(), base_url=BASE_URL)
        assert notice is not None
        notifications.notify(session, youth, notice, now=NOW)
    sent = {m.youth_id: m for m in session.scalars(select(OutboxMessage))}
    assert "Passe Navigo gratuit" not in (sent[discreet.id].body_text or "")
    assert "« Passe Navigo gratuit »" in (sent[detailed.id].body_text or "")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_psychologist_appointment_s_calendar_file_is_discreet(
    session: Session, language: str
) -> None:
    """The .ics alarm shows on the lock screen: its title says "Rendez-vous Paris avenir"
    unless the youth chose detailed messages (then "Rendez-vous avec un psychologue")."""
    psychologist = create_staff(session, role=StaffRole.PSYCHOLOGIST)
    bodies = {}
    for detailed in (False, True):
        youth = create_youth(
            session, language=language, preferred_channel=Channel.EMAIL, detailed_messages=detailed
        )
        assign(session, youth, create_staff(session))
        appointment = create_appointment(
            session,
            youth,
            psychologist,
            NOW + timedelta(days=7, hours=detailed),
            kind=AppointmentKind.PSYCHOLOGIST,
            address=PSYCHOLOGIST_ADDRESS,
        )
        appointments._confirm(session, youth, appointment, base_url=BASE_URL, now=NOW)
        message = session.scalars(
            select(OutboxMessage).where(OutboxMessage.youth_id == youth.id)
        ).one()
        assert message.attachment_filename == "rendez-vous.ics"
        bodies[detailed] = message.attachment_body or ""
        if not detailed:
            for part in _email_parts(message.subject or "", message.body_text, language):
                assert not leaks(part, language), part
    with i18n.using_locale(language):
        neutral = i18n.gettext(appointment_notices.DISCREET_CALENDAR_SUMMARY)
        kind = appointments.kind_label(AppointmentKind.PSYCHOLOGIST)
    unfolded = {detailed: body.replace("\r\n ", "") for detailed, body in bodies.items()}
    assert f"SUMMARY:{neutral}" in unfolded[False]
    assert kind not in unfolded[False]
    assert not leaks(unfolded[False].replace(PSYCHOLOGIST_ADDRESS, ""), language)
    assert f"SUMMARY:{kind}" in unfolded[True]


# --- The sender names -----------------------------------------------------------------------


def test_the_sender_names_are_neutral(settings: Settings) -> None:
    """ "Paris avenir" names the City's platform, not care, health or money: neutral. The
    product's long name ("Jeunes de l'ASE – Paris avenir") is never a sender."""
    display_name, _address = parseaddr(settings.mail_from)
    assert display_name == "Paris avenir"
    assert settings.sms_sender == "ParisAvenir"
    for language in LANGUAGES:
        assert not leaks(display_name, language)
        assert not leaks(settings.sms_sender, language)
    assert leaks("Jeunes de l’ASE – Paris avenir", "fr")  # what must never be a sender


# --- The youth's choice on their profile ---------------------------------------------------


async def test_the_youth_switches_to_detailed_messages_and_back(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session)
    other = create_youth(session)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    page = await client.get("/mon-espace/profil")
    assert re.search(r'value="discrets"[^>]*checked', page.text)
    assert not re.search(r'value="detailles"[^>]*checked', page.text)

    response = await post_form(client, "/mon-espace/profil/messages", {"messages": "detailles"})
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/mon-espace/profil?enregistre=1",
    )
    session.refresh(youth)
    session.refresh(other)
    assert youth.detailed_messages is True
    assert other.detailed_messages is False  # only the signed-in youth's own choice
    page = await client.get("/mon-espace/profil?enregistre=1")
    assert re.search(r'value="detailles"[^>]*checked', page.text)
    assert "C’est enregistré." in page.text
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.youth_id == youth.id)
    ).all()
    assert "youth.messages_detail" in actions

    # Anything else changes nothing; "discrets" goes back.
    await post_form(client, "/mon-espace/profil/messages", {"messages": "tout"})
    session.refresh(youth)
    assert youth.detailed_messages is True
    await post_form(client, "/mon-espace/profil/messages", {"messages": "discrets"})
    session.refresh(youth)
    assert youth.detailed_messages is False


async def test_only_the_youth_chooses(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    """A staff member's session (even the youth's référent) cannot change the choice."""
    youth = create_youth(session)
    referent = create_staff(session)
    assign(session, youth, referent)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    response = await post_form(client, "/mon-espace/profil/messages", {"messages": "detailles"})
    assert response.status_code in {303, 401, 403, 404}
    assert response.headers.get("location") != "/mon-espace/profil?enregistre=1"
    session.refresh(youth)
    assert youth.detailed_messages is False
    # Without any session: nothing either.
    client.cookies.clear()
    await post_form(client, "/mon-espace/profil/messages", {"messages": "detailles"})
    session.refresh(youth)
    assert youth.detailed_messages is False


@pytest.mark.parametrize(
    "text",
    [
        "Paris avenir (ASE) : votre code est {code}.",
        "Paris avenir : votre psychologue vous écrit : {link}",
        "Paris avenir : votre allocation de 651,69 € est accordée. {link}",
        "Paris avenir : 300 euros pour vous. {link}",
    ],
)
def test_the_admin_cannot_write_a_forbidden_word_into_an_sms(session: Session, text: str) -> None:
    key = "sign_in_code" if "{code}" in text else "request_update"
    with pytest.raises(message_templates.TemplateError, match="écran verrouillé"):
        message_templates.save(session, key, "fr", text, by_id=None)
    assert message_templates.override(session, key, "fr") is None
    # A neutral text is kept.
    assert message_templates.save(
        session, "request_update", "fr", "Du nouveau : {link}", by_id=None
    )
