"""Idempotent demo data: invented people only, fiction-range phones, example.org emails.

Every entity has a natural key (staff email, youth ASE reference); what exists already is
left alone, and a youth's requests, appointments and messages are created only with the
youth, so a second run adds nothing.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from cryptography.fernet import MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.catalogue import DEFAULT_PARAMETERS, ensure_catalogue
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.aid_requests.service import open_draft, record_transition
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
    WeeklyAvailability,
)
from paris_avenir.appointments.service import schedule_reminders
from paris_avenir.auth import staff_local
from paris_avenir.db import utcnow
from paris_avenir.kit.dates import PARIS, paris_day, years_before
from paris_avenir.messaging.models import Message, MessageThread
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser, Team
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Channel, EmploymentSituation, HousingSituation, Youth

DEMO_SEED = 2026
YOUTH_COUNT = 30
OFFICE = "Espace Paris avenir, 5 rue de l'Exemple, 75013 Paris"

TEAM_NAME = "Équipe Paris avenir Sud"
STAFF = [
    ("admin@example.org", "Nadia Admin", StaffRole.ADMIN),
    ("superviseure@example.org", "Hélène Martin", StaffRole.SUPERVISOR),
    ("referent.diallo@example.org", "Awa Diallo", StaffRole.REFERENT),
    ("referent.marchand@example.org", "Julien Marchand", StaffRole.REFERENT),
    ("referent.benali@example.org", "Sofia Benali", StaffRole.REFERENT),
    ("psychologue@example.org", "Claire Nguyen", StaffRole.PSYCHOLOGIST),
]
FIRST_NAMES = [
    "Moussa",
    "Inès",
    "Kevin",
    "Fatoumata",
    "Ahmad",
    "Lina",
    "Yanis",
    "Mariam",
    "Samuel",
    "Aïcha",
    "Bilal",
    "Chloé",
    "Idrissa",
    "Sarah",
    "Mohammad",
    "Léa",
    "Oumar",
    "Nour",
    "Dylan",
    "Kadiatou",
    "Zabiullah",
    "Emma",
    "Tesfay",
    "Amina",
    "Lucas",
    "Hawa",
    "Abdul",
    "Manon",
    "Selam",
    "Rayan",
]
LAST_NAMES = [
    "Traoré",
    "Petit",
    "Durand",
    "Camara",
    "Rahimi",
    "Lefèvre",
    "Haddad",
    "Keita",
    "Moreau",
    "Sissoko",
    "Amrani",
    "Girard",
    "Coulibaly",
    "Roux",
    "Ahmadzai",
    "Fontaine",
    "Diarra",
    "Mansour",
    "Laurent",
    "Konaté",
    "Safi",
    "Bonnet",
    "Gebre",
    "Cissé",
    "Mercier",
    "Touré",
    "Karimi",
    "Blanc",
    "Tesfaye",
    "Benslimane",
]
# Former unaccompanied minors and their languages: Arabic, Dari, Pashto, English, Tigrinya.
MNA_LANGUAGES = {
    4: "fa_AF",
    7: "ar",
    10: "ar",
    14: "fa_AF",
    17: "ar",
    20: "ps",
    22: "ti",
    26: "ps",
    28: "en",
    12: "en",
}
# Youths quiet for 30 to 120 days, for the outreach watch.
QUIET_DAYS = {2: 31, 5: 38, 9: 46, 13: 61, 18: 75, 21: 95, 25: 120}
# One request in every status of the life cycle, and a few more.
REQUESTS = [
    (0, AidCode.ALLOCATION, RequestStatus.DRAFT),
    (1, AidCode.ALLOCATION, RequestStatus.SUBMITTED),
    (3, AidCode.LOGEMENT, RequestStatus.UNDER_REVIEW),
    (4, AidCode.NAVIGO, RequestStatus.MISSING_DOCUMENTS),
    (6, AidCode.BOURSE, RequestStatus.GRANTED),
    (8, AidCode.AIDE_URGENCE, RequestStatus.REFUSED),
    (11, AidCode.ALLOCATION, RequestStatus.PAID),
    (15, AidCode.ALLOCATION, RequestStatus.RENEWAL_DUE),
    (16, AidCode.PREMIER_EMPLOI, RequestStatus.WITHDRAWN),
    (19, AidCode.GARANTIE_FSL, RequestStatus.SUBMITTED),
    (23, AidCode.GUICHET, RequestStatus.UNDER_REVIEW),
    (7, AidCode.LOGEMENT, RequestStatus.SUBMITTED),
    # Granted above the threshold: the supervisor has it to confirm.
    (24, AidCode.BOURSE, RequestStatus.TO_CONFIRM),
]
# The path each final status went through.
PATHS: dict[RequestStatus, list[RequestStatus]] = {
    RequestStatus.DRAFT: [RequestStatus.DRAFT],
    RequestStatus.SUBMITTED: [RequestStatus.DRAFT, RequestStatus.SUBMITTED],
    RequestStatus.UNDER_REVIEW: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
    ],
    RequestStatus.MISSING_DOCUMENTS: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.MISSING_DOCUMENTS,
    ],
    RequestStatus.GRANTED: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.GRANTED,
    ],
    RequestStatus.REFUSED: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.REFUSED,
    ],
    RequestStatus.PAID: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.GRANTED,
        RequestStatus.PAID,
    ],
    RequestStatus.RENEWAL_DUE: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.GRANTED,
        RequestStatus.PAID,
        RequestStatus.RENEWAL_DUE,
    ],
    RequestStatus.WITHDRAWN: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.WITHDRAWN,
    ],
    RequestStatus.TO_CONFIRM: [
        RequestStatus.DRAFT,
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.TO_CONFIRM,
    ],
}
STAFF_STEPS = {
    RequestStatus.UNDER_REVIEW,
    RequestStatus.MISSING_DOCUMENTS,
    RequestStatus.GRANTED,
    RequestStatus.REFUSED,
    RequestStatus.PAID,
    RequestStatus.RENEWAL_DUE,
    RequestStatus.TO_CONFIRM,
}
REASONS = {
    RequestStatus.MISSING_DOCUMENTS: "Il manque une photo d'identité récente.",
    RequestStatus.GRANTED: "Votre demande est accordée.",
    RequestStatus.REFUSED: (
        "Vous avez déjà reçu une aide d'urgence ce mois-ci. "
        "Parlez-en avec votre référent : il existe d'autres solutions."
    ),
    RequestStatus.WITHDRAWN: "J'ai trouvé un apprentissage par moi-même.",
}


@dataclass
class DemoSummary:
    """What one run added (a second run adds nothing)."""

    staff: int = 0
    youths: int = 0
    aid_requests: int = 0
    appointments: int = 0
    messages: int = 0
    aids: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, field.name) for field in fields(self))

    def describe(self, held: DemoSummary | None = None) -> str:
        """One line for the operator: what was added, then what the database holds."""
        added = (
            "ajouté " + _counts(self, only_some=True)
            if self.total
            else "rien ajouté (déjà chargée)"
        )
        return f"Démo : {added}" + (f" ; en base : {_counts(held)}." if held else ".")


def _counts(summary: DemoSummary, *, only_some: bool = False) -> str:
    words = [
        (summary.staff, "agents"),
        (summary.youths, "jeunes"),
        (summary.aid_requests, "demandes"),
        (summary.appointments, "rendez-vous"),
        (summary.messages, "messages"),
        (summary.aids, "aides au catalogue"),
    ]
    return ", ".join(f"{count} {word}" for count, word in words if count or not only_some)


def database_counts(session: Session) -> DemoSummary:
    """What the database holds, in the same words as a run's summary."""
    from sqlalchemy import func

    from paris_avenir.aid_requests.models import Aid

    def count(model: type) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    return DemoSummary(
        staff=count(StaffUser),
        youths=count(Youth),
        aid_requests=count(AidRequest),
        appointments=count(Appointment),
        messages=count(Message),
        aids=count(Aid),
    )


def _paris_instant(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


def _business_day(day: date, count: int) -> date:
    """The count-th weekday after day (1 = the next weekday)."""
    candidate = day
    while count > 0:
        candidate += timedelta(days=1)
        if candidate.weekday() < 5:
            count -= 1
    return candidate


# Development only (`demo` refuses to run in prod): every demo staff account signs in with
# this password and this TOTP secret, so a newcomer can open the back office at once.
DEMO_STAFF_PASSWORD = "paris-avenir-demo"  # noqa: S105
DEMO_TOTP_SECRET = "PARISAVENIRDEMOPARISAVENIRDEMO23"  # noqa: S105


def demo_totp_uri() -> str:
    return staff_local.provisioning_uri(DEMO_TOTP_SECRET, "demo@example.org")


def _ensure_staff(
    session: Session, summary: DemoSummary, cipher: MultiFernet | None
) -> dict[str, StaffUser]:
    team = session.scalar(select(Team).where(Team.name == TEAM_NAME))
    if team is None:
        team = Team(name=TEAM_NAME)
        session.add(team)
        session.flush()
    by_email = {user.email: user for user in session.scalars(select(StaffUser))}
    for email, full_name, role in STAFF:
        if email not in by_email:
            user = StaffUser(
                email=email,
                full_name=full_name,
                role=role,
                team_id=team.id,
                work_phone="+33639989" + str(len(by_email)).zfill(3),
            )
            if cipher is not None:
                user.password_hash = staff_local.hash_password(DEMO_STAFF_PASSWORD)
                user.totp_secret_encrypted = cipher.encrypt(DEMO_TOTP_SECRET.encode()).decode()
            session.add(user)
            by_email[email] = user
            summary.staff += 1
    session.flush()
    _ensure_availability(session, by_email)
    return by_email


# The counter ("guichet démarches", help with papers) is held by the référents in turn, late
# afternoon after their own appointments (for youths who work or study): one a weekday.
COUNTER_DAYS = {
    "referent.diallo@example.org": (0, 3),
    "referent.marchand@example.org": (1, 4),
    "referent.benali@example.org": (2,),
}


def _ensure_availability(session: Session, by_email: dict[str, StaffUser]) -> None:
    """Weekly openings for every kind a youth can book, added where a demo staff member has
    none of that kind yet (an older demo database gets the counter's too)."""
    held = {
        (row[0], row[1])
        for row in session.execute(select(WeeklyAvailability.staff_id, WeeklyAvailability.kind))
    }

    def add(user: StaffUser, kind: AppointmentKind, weekday: int, start: time, end: time) -> None:
        session.add(
            WeeklyAvailability(
                staff_id=user.id,
                kind=kind,
                place=AppointmentPlace.OFFICE,
                address=OFFICE,
                weekday=weekday,
                start_time=start,
                end_time=end,
                slot_minutes=45 if kind is AppointmentKind.PSYCHOLOGIST else 30,
            )
        )

    for email, _full_name, role in STAFF:
        user = by_email[email]
        if role in {StaffRole.REFERENT, StaffRole.PSYCHOLOGIST}:
            kind = (
                AppointmentKind.REFERENT
                if role is StaffRole.REFERENT
                else AppointmentKind.PSYCHOLOGIST
            )
            if (user.id, kind) not in held:
                for weekday in range(5):
                    for start, end in ((time(9, 30), time(12, 30)), (time(14), time(17))):
                        add(user, kind, weekday, start, end)
        if email in COUNTER_DAYS and (user.id, AppointmentKind.COUNTER) not in held:
            for weekday in COUNTER_DAYS[email]:
                add(user, AppointmentKind.COUNTER, weekday, time(17), time(18, 30))
    session.flush()


# Kadiatou (followed by Awa Diallo) answered "J'ai besoin d'aide" this morning: the alert is
# at the top of "À faire" on a fresh demo.
NEEDS_HELP_INDEX = 19


def load_demo_data(
    session: Session,
    *,
    now: datetime | None = None,
    cipher: MultiFernet | None = None,
    base_url: str = "http://127.0.0.1:8000",
) -> DemoSummary:
    """Add what is missing of the demo; with a cipher, staff get the demo credentials."""
    now = now or utcnow()
    today = paris_day(now)
    rng = random.Random(DEMO_SEED)  # noqa: S311 - demo data, not security
    summary = DemoSummary(aids=ensure_catalogue(session))
    staff = _ensure_staff(session, summary, cipher)
    referents = [user for user in staff.values() if user.role is StaffRole.REFERENT]
    referents.sort(key=lambda user: user.email)
    psychologist = staff["psychologue@example.org"]

    existing_refs = set(session.scalars(select(Youth.ase_ref)))
    for index in range(YOUTH_COUNT):
        ase_ref = f"DEMO-ASE-{index + 1:04d}"
        if ase_ref in existing_refs:
            continue
        age = 18 + index % 8
        birth_date = years_before(today, age) - timedelta(days=rng.randint(20, 340))
        exit_age = 18 if index % 3 else 21
        ase_exit_date = min(
            years_before(today, age - exit_age) - timedelta(days=rng.randint(0, 300)), today
        )
        first, last = FIRST_NAMES[index], LAST_NAMES[index]
        language = MNA_LANGUAGES.get(index, "fr")
        quiet_days = QUIET_DAYS.get(index)
        never_activated = index in {25, 29}
        youth = Youth(
            ase_ref=ase_ref,
            first_name=first,
            last_name=last,
            birth_date=birth_date,
            phone=f"+3363998{index + 1:04d}",
            email=f"{ascii_slug(first)}.{ascii_slug(last)}@example.org",
            language=language,
            preferred_channel=Channel.EMAIL if index % 4 == 3 else Channel.SMS,
            ase_exit_date=ase_exit_date,
            former_unaccompanied_minor=index in MNA_LANGUAGES,
            housing_situation=rng.choice(list(HousingSituation)),
            employment_situation=rng.choice(list(EmploymentSituation)),
            monthly_income_cents=rng.choice([0, 0, 25000, 60000, 120000]),
            has_family_support=rng.random() < 0.2,
            in_higher_education=index % 5 == 1,
            lives_in_ile_de_france=index != 27,
            activated_at=None if never_activated else now - timedelta(days=150 + index),
        )
        if not never_activated:
            record_activity(
                session,
                youth,
                Activity.DEMO,
                now
                - timedelta(
                    days=quiet_days if quiet_days else rng.randint(0, 20), hours=rng.randint(0, 10)
                ),
            )
        session.add(youth)
        session.flush()
        summary.youths += 1
        referent = referents[index % len(referents)]
        session.add(
            CaseloadAssignment(
                youth_id=youth.id,
                referent_id=referent.id,
                started_at=now - timedelta(days=200),
                assigned_by_id=staff["superviseure@example.org"].id,
            )
        )
        summary.aid_requests += _add_requests(session, youth, referent, now, index)
        summary.appointments += _add_appointments(
            session, youth, referent, psychologist, now, index, base_url
        )
        summary.messages += _add_messages(session, youth, referent, now, index)
        if index == NEEDS_HELP_INDEX:
            _answer_needs_help(session, youth, now - timedelta(hours=2), base_url)
    session.flush()
    return summary


def _answer_needs_help(session: Session, youth: Youth, when: datetime, base_url: str) -> None:
    """A "Comment ça va ?" answered "J'ai besoin d'aide", through the real check-in."""
    from paris_avenir.outreach import checkin
    from paris_avenir.outreach.models import OutreachAttempt, OutreachReason

    attempt = OutreachAttempt(
        youth_id=youth.id,
        reason=OutreachReason.CHECK_IN,
        step=1,
        period_key="demo",
        channel=youth.preferred_channel,
        attempted_at=when - timedelta(hours=1),
    )
    session.add(attempt)
    session.flush()
    checkin.answer(session, attempt, needs_help=True, base_url=base_url, now=when)


def ascii_slug(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(char for char in decomposed if char.isascii() and char.isalnum()).lower()


def _add_requests(
    session: Session, youth: Youth, referent: StaffUser, now: datetime, index: int
) -> int:
    count = 0
    for youth_index, aid_code, final_status in REQUESTS:
        if youth_index != index:
            continue
        path = PATHS[final_status]
        started = now - timedelta(days=10 * len(path) + index)
        # The draft opens as the youth's; every later step goes through the life cycle's
        # own check (record_transition), as the youth's and the staff's actions do.
        request = open_draft(
            session,
            youth,
            aid_code,
            form_data={},
            current_step=3 if len(path) > 1 else 1,
            now=started,
        )
        for step, status in enumerate(path[1:], start=1):
            occurred_at = started + timedelta(days=10 * step)
            if status is RequestStatus.SUBMITTED:
                request.submitted_at = occurred_at
            if status in {RequestStatus.GRANTED, RequestStatus.REFUSED}:
                request.decided_at = occurred_at
                request.decision_reason = REASONS[status]
            record_transition(
                session,
                request,
                status,
                actor_staff_id=referent.id if status in STAFF_STEPS else None,
                actor_is_youth=status not in STAFF_STEPS,
                reason=REASONS.get(status),
                now=occurred_at,
            )
        if final_status in {RequestStatus.GRANTED, RequestStatus.PAID, RequestStatus.RENEWAL_DUE}:
            default = DEFAULT_PARAMETERS[aid_code].get("monthly_amount_cents")
            request.granted_amount_cents = int(default) if default else 150000
        if final_status is RequestStatus.RENEWAL_DUE:
            request.renewal_due_on = now + timedelta(days=14)
        if final_status is RequestStatus.TO_CONFIRM:
            request.proposed_by_staff_id = referent.id
            request.proposed_amount_cents = 150000
        count += 1
    return count


def _add_appointments(
    session: Session,
    youth: Youth,
    referent: StaffUser,
    psychologist: StaffUser,
    now: datetime,
    index: int,
    base_url: str,
) -> int:
    """Upcoming appointments, each with the reminders a booking schedules (the outbox holds
    them until their time: `/dev/messages` shows them)."""
    if index % 3 != 0:
        return 0
    today = paris_day(now)
    day = _business_day(today, 1 + index // 3)
    starts_at = _paris_instant(day, 10 if index % 2 else 14, 30 if index % 6 else 0)
    appointments = [
        Appointment(
            youth_id=youth.id,
            staff_id=referent.id,
            kind=AppointmentKind.REFERENT,
            place=AppointmentPlace.OFFICE,
            address=OFFICE,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=30),
        )
    ]
    if index in {0, 9}:
        psy_start = _paris_instant(_business_day(today, 3 + index), 15)
        appointments.append(
            Appointment(
                youth_id=youth.id,
                staff_id=psychologist.id,
                kind=AppointmentKind.PSYCHOLOGIST,
                place=AppointmentPlace.OFFICE,
                address=OFFICE,
                starts_at=psy_start,
                ends_at=psy_start + timedelta(minutes=45),
            )
        )
    session.add_all(appointments)
    session.flush()
    for appointment in appointments:
        schedule_reminders(session, youth, appointment, base_url=base_url, now=now)
    return len(appointments)


def _add_messages(
    session: Session, youth: Youth, referent: StaffUser, now: datetime, index: int
) -> int:
    if index % 2:
        return 0
    sent_at = now - timedelta(days=2, hours=index)
    thread = MessageThread(youth_id=youth.id, subject="Votre suivi", last_message_at=sent_at)
    session.add(thread)
    session.flush()
    session.add(
        Message(
            thread_id=thread.id,
            author_staff_id=referent.id,
            sent_at=sent_at,
            body=(
                f"Bonjour {youth.first_name}, c'est {referent.full_name.split()[0]}, "
                "je vous suis à Paris avenir. Comment allez-vous ? Vous pouvez me répondre ici."
            ),
        )
    )
    return 1
