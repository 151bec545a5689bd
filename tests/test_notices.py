"""Every message to a youth is a Notice declared next to its domain and sent by one
`notifications.notify()`: in the youth's language, with the admin's SMS text for every
template the admin's page offers, on a channel that works, outside quiet hours unless it
confirms what the youth just did. And no domain assembles a message by hand any more."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import instruction
from paris_avenir.aid_requests import notices as request_notices
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.appointments import notices as appointment_notices
from paris_avenir.appointments import service as appointments
from paris_avenir.appointments.models import Appointment, AppointmentKind
from paris_avenir.auth import codes
from paris_avenir.backoffice import importer
from paris_avenir.config import PROJECT_ROOT
from paris_avenir.kit import quiet_hours
from paris_avenir.kit.dates import add_months
from paris_avenir.messaging import message_templates, notifications
from paris_avenir.messaging import notices as messaging_notices
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.messaging.notifications import Notice
from paris_avenir.messaging.sms_segments import fit_gsm7
from paris_avenir.outreach import notices as outreach_notices
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff import notices as staff_notices
from paris_avenir.web import i18n
from paris_avenir.youths.models import Channel, Youth
from tests.factories import assign, create_appointment, create_staff, create_youth

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # Wednesday 11:00 in Paris
NIGHT = datetime(2026, 12, 2, 22, 30, tzinfo=PARIS)  # Wednesday 22:30: quiet hours
BASE_URL = "https://paris-avenir.example.org"


def _utc(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- Every notice, built as its domain builds it -----------------------------------------


def _appointment() -> Appointment:
    return Appointment(
        id=uuid.uuid4(),
        kind=AppointmentKind.REFERENT,
        starts_at=datetime(2026, 12, 9, 13, 30, tzinfo=UTC),
        address="5 rue de l’Église",
    )


def _calendar() -> tuple[str, str, str]:
    return ("rendez-vous.ics", "text/calendar", "BEGIN:VCALENDAR")


def _request(status: RequestStatus) -> AidRequest:
    return AidRequest(id=uuid.uuid4(), aid_code=AidCode.NAVIGO, status=status)


def _attempt(reason: OutreachReason) -> OutreachAttempt:
    return OutreachAttempt(id=uuid.uuid4(), reason=reason, step=1, channel=Channel.SMS)


def every_notice() -> dict[str, Notice]:
    youth = Youth(first_name="Zoé")
    found: dict[str, Notice | None] = {
        "new_message": messaging_notices.new_message(
            thread_id=uuid.uuid4(), first_unread_id=uuid.uuid4(), base_url=BASE_URL
        ),
        "invitation": staff_notices.invitation(
            youth_id=uuid.uuid4(), first_name="Zoé", link=f"{BASE_URL}/lien/abc"
        ),
        "appointment_confirmation": appointment_notices.confirmation(
            _appointment(), base_url=BASE_URL, calendar=_calendar
        ),
        "appointment_cancellation": appointment_notices.cancellation(
            _appointment(), base_url=BASE_URL, calendar=_calendar
        ),
        "appointment_reminder": appointment_notices.reminder(
            _appointment(), hours=48, base_url=BASE_URL, send_at=NOW, expires_at=NOW
        ),
        "follow_up_interview": appointment_notices.interview_invitation(
            key="follow-up-interview:test", link=f"{BASE_URL}/lien/abc"
        ),
    }
    for status in request_notices.TOLD:
        found[f"request_update:{status.value}"] = request_notices.decision(
            _request(status), event_id=uuid.uuid4(), base_url=BASE_URL
        )
    for reason in (
        OutreachReason.INACTIVITY,
        OutreachReason.CHECK_IN,
        *outreach_notices.TRIGGER_TEXTS,
    ):
        found[f"outreach_{reason.value}"] = outreach_notices.for_attempt(
            youth, _attempt(reason), base_url=BASE_URL, link=f"{BASE_URL}/point/abc"
        )
    notices = {name: notice for name, notice in found.items() if notice is not None}
    assert len(notices) == len(found)
    return notices


NOTICES = every_notice()


@pytest.mark.parametrize("name", sorted(NOTICES))
@pytest.mark.parametrize("language", ["ar", "en", "fa_AF", "ps", "ti"])
def test_each_notice_is_written_in_the_youths_language(name: str, language: str) -> None:
    notice = NOTICES[name]
    french, translated = notifications.render(notice, "fr"), notifications.render(notice, language)
    for msgid in filter(None, (notice.sms, notice.subject, notice.text)):
        assert i18n.is_translated(msgid, language), msgid
    assert translated.sms != french.sms
    assert translated.subject != french.subject
    assert translated.text != french.text
    # The values reach every language's words: the link is in the SMS and the email.
    links = re.findall(r"https://\S+", french.sms)
    assert links
    assert all(link in translated.sms for link in links)
    assert re.findall(r"https://\S+", french.text)[-1] in translated.text
    assert "%(" not in translated.sms + translated.subject + translated.text


def test_an_arabic_notice_reaches_the_outbox_in_arabic_on_each_channel(session: Session) -> None:
    notice = NOTICES["appointment_confirmation"]
    words = notifications.render(notice, "ar")
    assert "ديسمبر" in words.sms  # the date in Arabic too
    by_sms = create_youth(session, language="ar", preferred_channel=Channel.SMS)
    by_email = create_youth(session, language="ar", preferred_channel=Channel.EMAIL)
    sms = notifications.notify(session, by_sms, notice, now=NOW)
    email = notifications.notify(session, by_email, replace(notice, key="other"), now=NOW)
    assert sms is not None and email is not None
    assert (sms.channel, sms.body_text, sms.subject) == (Channel.SMS, fit_gsm7(words.sms), None)
    assert sms.attachment_filename is None  # a calendar file is for the email
    assert (email.channel, email.subject, email.body_text) == (
        Channel.EMAIL,
        words.subject,
        words.text,
    )
    assert email.language == "ar"
    assert email.attachment_filename == "rendez-vous.ics"


# --- The admin's SMS texts reach the outbox, for every template the admin's page offers ----


def _new_message(session: Session, youth: Youth) -> None:
    notice = messaging_notices.new_message(
        thread_id=uuid.uuid4(), first_unread_id=uuid.uuid4(), base_url=BASE_URL
    )
    notifications.notify(session, youth, notice, now=NOW)


def _request_update(session: Session, youth: Youth) -> None:
    request = AidRequest(youth_id=youth.id, aid_code=AidCode.NAVIGO, status=RequestStatus.GRANTED)
    session.add(request)
    session.flush()
    instruction._tell_youth(session, request, uuid.uuid4(), BASE_URL, NOW)


def _invitation(session: Session, youth: Youth) -> None:
    assert importer._invite(session, youth, base_url=BASE_URL, now=NOW)


def _sign_in_code(session: Session, youth: Youth) -> None:
    channel = youth.preferred_channel
    recipient = youth.phone if channel is Channel.SMS else youth.email
    assert recipient
    codes.queue_code(
        session,
        youth=youth,
        channel=channel,
        recipient=recipient,
        code="482913",
        template="sign_in_code",
        key=f"sign-in-code:{youth.id}",
        now=NOW,
    )


# How the product sends each template the admin may rewrite.
SENDERS: dict[str, Callable[[Session, Youth], None]] = {
    "new_message": _new_message,
    "request_update": _request_update,
    "invitation": _invitation,
    "sign_in_code": _sign_in_code,
}


def test_every_template_the_admin_may_rewrite_has_its_sending_path_here() -> None:
    assert set(SENDERS) == set(message_templates.SPECS)


@pytest.mark.parametrize("key", sorted(SENDERS))
def test_the_admins_sms_text_reaches_the_outbox(session: Session, key: str) -> None:
    spec = message_templates.SPECS[key]
    placeholders = " ".join("{" + name + "}" for name in spec.placeholders)
    message_templates.save(session, key, "ar", f"باريس المستقبل {placeholders}", by_id=None)
    message_templates.save(session, key, "fr", f"Texte de l’admin {placeholders}", by_id=None)
    arabic = create_youth(session, language="ar", preferred_channel=Channel.SMS)
    french = create_youth(session, preferred_channel=Channel.SMS)
    by_email = create_youth(session, language="ar", preferred_channel=Channel.EMAIL)
    for youth in (arabic, french, by_email):
        SENDERS[key](session, youth)
    sent = {
        message.youth_id: message
        for message in session.scalars(select(OutboxMessage).where(OutboxMessage.template == key))
    }
    assert sent[arabic.id].body_text.startswith("باريس المستقبل ")
    assert sent[french.id].body_text.startswith("Texte de l'admin ")  # GSM-7 apostrophe
    for message in (sent[arabic.id], sent[french.id]):
        assert "{" not in message.body_text
        assert re.search(r"(https://\S+|\d{6})$", message.body_text)
    # The admin rewrites SMS: an email keeps its own words.
    assert "باريس المستقبل" not in sent[by_email.id].body_text


def test_without_the_admins_text_in_their_language_the_built_in_one_is_sent(
    session: Session,
) -> None:
    youth = create_youth(session, language="ar", preferred_channel=Channel.SMS)
    message_templates.save(session, "new_message", "fr", "Nouveau : {link}", by_id=None)
    _new_message(session, youth)
    message = session.scalars(select(OutboxMessage)).one()
    assert message.body_text == fit_gsm7(notifications.render(NOTICES["new_message"], "ar").sms)


# --- Quiet hours, confirmations, channels ---------------------------------------------------


def test_quiet_hours_hold_a_notice_a_confirmation_leaves_at_once(session: Session) -> None:
    youth = create_youth(session)
    quiet = quiet_hours.load(session)
    held = notifications.notify(session, youth, NOTICES["new_message"], now=NIGHT)
    confirmation = notifications.notify(
        session, youth, NOTICES["appointment_confirmation"], now=NIGHT
    )
    assert held is not None and confirmation is not None
    assert _utc(held.next_attempt_at) == quiet.next_sending_time(NIGHT).astimezone(UTC)
    assert _utc(held.next_attempt_at) == datetime(2026, 12, 3, 9, 0, tzinfo=PARIS)
    assert held.respects_quiet_hours
    assert _utc(confirmation.next_attempt_at) == NIGHT.astimezone(UTC)
    assert not confirmation.respects_quiet_hours


def test_a_notice_at_its_own_time_is_not_moved_a_later_one_is_held(session: Session) -> None:
    youth = create_youth(session)
    early = datetime(2026, 12, 3, 19, 30, tzinfo=PARIS)
    reminder = appointment_notices.reminder(
        _appointment(), hours=48, base_url=BASE_URL, send_at=early, expires_at=early
    )
    exact = notifications.notify(session, youth, reminder, now=NOW)
    late = Notice(template="t", key="late", sms="s", subject="s", not_before=NIGHT)
    held = notifications.notify(session, youth, late, now=NOW)
    assert exact is not None and held is not None
    assert _utc(exact.next_attempt_at) == early.astimezone(UTC)
    assert exact.respects_quiet_hours
    assert _utc(held.next_attempt_at) == datetime(2026, 12, 3, 9, 0, tzinfo=PARIS)


def test_the_channel_falls_back_and_outreach_emails_stop_when_unsubscribed(
    session: Session,
) -> None:
    unreachable = create_youth(session, phone_unreachable_at=NOW)
    unsubscribed = create_youth(
        session, preferred_channel=Channel.EMAIL, outreach_email_opted_out_at=NOW
    )
    nowhere = create_youth(
        session, phone=None, preferred_channel=Channel.EMAIL, outreach_email_opted_out_at=NOW
    )
    outreach = Notice(template="outreach_inactivite", key="o", sms="s", subject="s")
    message = notifications.notify(session, unreachable, NOTICES["new_message"], now=NOW)
    assert message is not None and message.channel is Channel.EMAIL
    message = notifications.notify(session, unsubscribed, outreach, now=NOW)
    assert message is not None and message.channel is Channel.SMS
    message = notifications.notify(
        session,
        unsubscribed,
        Notice(template="new_message", key="m", sms="s", subject="s"),
        now=NOW,
    )
    assert message is not None and message.channel is Channel.EMAIL  # not an outreach email
    assert notifications.notify(session, nowhere, replace(outreach, key="n"), now=NOW) is None


def test_the_appointment_notices_go_through_the_booking(session: Session) -> None:
    referent = create_staff(session)
    youth = create_youth(session, language="ar", preferred_channel=Channel.EMAIL)
    assign(session, youth, referent)
    appointment = create_appointment(session, youth, referent, NOW + timedelta(days=7))
    appointments._confirm(session, youth, appointment, base_url=BASE_URL, now=NIGHT)
    assert (
        appointments.schedule_reminders(session, youth, appointment, base_url=BASE_URL, now=NOW)
        == 2
    )
    appointments.cancel(session, appointment, youth, now=NOW, base_url=BASE_URL)
    sent = {m.template: m for m in session.scalars(select(OutboxMessage))}
    assert set(sent) == {
        "appointment_confirmation",
        "appointment_reminder",
        "appointment_cancellation",
    }
    notice = appointment_notices.cancellation(appointment, base_url=BASE_URL, calendar=_calendar)
    assert sent["appointment_cancellation"].subject == notifications.render(notice, "ar").subject
    assert sent["appointment_cancellation"].attachment_filename == "rendez-vous.ics"
    assert not sent["appointment_confirmation"].respects_quiet_hours


def test_the_follow_up_interview_invitation_is_a_notice(session: Session) -> None:
    today = NOW.astimezone(PARIS).date()
    youth = create_youth(
        session, language="ti", ase_exit_date=add_months(today, -6) + timedelta(days=10)
    )
    assign(session, youth, create_staff(session))
    assert appointments.propose_follow_up_interviews(session, base_url=BASE_URL, now=NOW) == 1
    message = session.scalars(select(OutboxMessage)).one()
    assert message.template == "follow_up_interview"
    assert message.language == "ti"
    notice = appointment_notices.interview_invitation(key="k", link="LINK")
    assert (
        message.body_text.split("http")[0]
        == fit_gsm7(notifications.render(notice, "ti").sms).split("LINK")[0]
    )


# --- One idiom --------------------------------------------------------------------------------

PACKAGE = PROJECT_ROOT / "paris_avenir"
# Security messages with their own path: one-time codes; staff emails are not to a youth.
ENQUEUE_ALLOWED = {"auth/codes.py", "staff/tasks.py"}


def _modules_outside_messaging() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(PACKAGE)), path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] != "messaging"
    ]


def test_no_domain_assembles_a_message_by_hand() -> None:
    """A module that sends a notice builds it in a `notices.py` and lets notify() render
    it: no switching to the youth's language, no admin text, no texts handed to notify."""
    for name, source in _modules_outside_messaging():
        if "notifications.notify(" in source:
            for hand_made in ("using_locale", "render_sms", "sms_text=", "email_subject="):
                assert hand_made not in source, f"{name}: {hand_made} next to notify()"
        if "render_sms" in source:
            assert name == "auth/codes.py", name
        if "outbox.enqueue(" in source:
            assert name in ENQUEUE_ALLOWED, f"{name} queues a message outside notify()"


def test_notices_are_declared_in_notices_modules() -> None:
    for name, source in _modules_outside_messaging():
        if re.search(r"\bNotice\(", source):
            assert Path(name).name == "notices.py", name
