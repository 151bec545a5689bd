from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum


class StaffRole(enum.StrEnum):
    REFERENT = "referent"
    PSYCHOLOGIST = "psychologue"
    SUPERVISOR = "superviseur"
    ADMIN = "admin"


class Permission(enum.StrEnum):
    """What a back-office page lets someone do; which roles may is `PERMISSION_ROLES`."""

    CASELOAD = "caseload"  # "Mes jeunes": a caseload, or a team's
    TASKS = "tasks"  # "À faire"
    COUNTER = "counter"  # acting for the youth at the counter
    CALENDAR = "calendar"  # an agenda and availabilities
    TEAM = "team"  # the team page, reassigning, pausing the watch for the team
    STATISTICS = "statistics"
    IMPORT = "import"  # the ASE import
    ADMINISTRATION = "administration"  # settings, accounts, aids, texts


# The one table of who may do what: route signatures (staff.permissions), the menu and the
# home pages all read it.
PERMISSION_ROLES: dict[Permission, frozenset[StaffRole]] = {
    Permission.CASELOAD: frozenset({StaffRole.REFERENT, StaffRole.SUPERVISOR}),
    Permission.TASKS: frozenset({StaffRole.REFERENT, StaffRole.SUPERVISOR}),
    Permission.COUNTER: frozenset({StaffRole.REFERENT, StaffRole.SUPERVISOR}),
    Permission.CALENDAR: frozenset(
        {StaffRole.REFERENT, StaffRole.PSYCHOLOGIST, StaffRole.SUPERVISOR}
    ),
    Permission.TEAM: frozenset({StaffRole.SUPERVISOR}),
    Permission.STATISTICS: frozenset({StaffRole.SUPERVISOR, StaffRole.ADMIN}),
    Permission.IMPORT: frozenset({StaffRole.SUPERVISOR, StaffRole.ADMIN}),
    Permission.ADMINISTRATION: frozenset({StaffRole.ADMIN}),
}
# Who works a queue of tasks: the référents and, for their team, the supervisors.
TASK_ROLES = PERMISSION_ROLES[Permission.TASKS]


class Team(RecordMixin, Base):
    __tablename__ = "team"

    name: Mapped[str] = mapped_column(String(120), unique=True)


class StaffUser(RecordMixin, Base):
    __tablename__ = "staff_user"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole, "staff_role"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"), index=True)
    work_phone: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # Local accounts: argon2 hash and TOTP secret (encrypted at rest); OIDC accounts: subject.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(String(255))
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Last TOTP time step accepted: a code cannot be replayed within its window.
    totp_last_step: Mapped[int | None]
    failed_sign_in_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Private calendar feed: the URL holds a random token, only its hash is stored;
    # issuing a new one revokes the old URL.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Leave, sickness: while absent, new tasks for their youths go to the team's supervisor.
    absent_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    team: Mapped[Team | None] = relationship(lazy="raise")

    def is_absent(self, now: datetime) -> bool:
        return self.absent_until is not None and self.absent_until > now

    def may(self, permission: Permission | str) -> bool:
        """Whether their role allows `permission` (templates pass its name)."""
        return self.role in PERMISSION_ROLES[Permission(permission)]

    @property
    def works_tasks(self) -> bool:
        """Whether "À faire" is theirs (the menu shows it, the home page lists its top)."""
        return self.may(Permission.TASKS)

    @property
    def home_path(self) -> str:
        """Where their back office opens: an admin has no caseload (settings and audit), a
        psychologist works from today's agenda, the others from their youths."""
        if self.may(Permission.CASELOAD):
            return "/pro"
        if self.may(Permission.ADMINISTRATION):
            return "/pro/admin"
        return "/pro/agenda?vue=jour"


class CaseloadAssignment(RecordMixin, Base):
    """A youth followed by a référent, from started_at until ended_at (history kept)."""

    __tablename__ = "caseload_assignment"
    __table_args__ = (
        # At most one current référent per youth.
        Index(
            "uq_caseload_assignment_current_youth",
            "youth_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
        Index("ix_caseload_assignment_referent_current", "referent_id", "ended_at"),
    )

    youth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("youth.id", ondelete="CASCADE"))
    referent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    reason: Mapped[str | None] = mapped_column(String(500))

    referent: Mapped[StaffUser] = relationship(foreign_keys=[referent_id], lazy="raise")


class CounterSession(RecordMixin, Base):
    """Counter mode ("mode guichet"): a staff member acts for a youth who is present and
    agreed. Every action taken under it is marked as done for the youth."""

    __tablename__ = "counter_session"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), index=True)
    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    consent_recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TaskKind(enum.StrEnum):
    """What the watch (or a youth's action) hands over to a person."""

    NEEDS_HELP_ALERT = "alerte_besoin_aide"
    PHONE_YOUTH = "appeler"
    UNREACHABLE = "injoignable"
    MISSED_APPOINTMENT = "rdv_manque"
    DELETION_REQUEST = "suppression_compte"
    DOCUMENTS_RECEIVED = "pieces_recues"
    FOLLOW_UP_INTERVIEW = "entretien_6_mois"
    BIRTHDAY_21 = "passage_21_ans"
    BIRTHDAY_25 = "passage_25_ans"
    REQUEST_WAITING = "demande_en_attente"
    PAPER_EXPIRING = "papier_expire"  # a month before a paper of the vault expires
    ALLOCATION_RENEWAL = "renouvellement_allocation"  # a month before it is due
    # A message and its fallback on the other channel both failed (messaging/fallback.py).
    NUMBER_TO_CHECK = "numero_a_verifier"
    # "Je ne peux pas venir" then "Être rappelé·e" from a reminder's one-tap link.
    CALL_BACK = "rappel_demande"


class TaskOutcome(enum.StrEnum):
    REACHED = "joint"
    NO_ANSWER = "pas_de_reponse"
    WRONG_NUMBER = "mauvais_numero"
    SEEN_AT_COUNTER = "vu_au_guichet"
    NO_LONGER_NEEDED = "plus_besoin"
    FORWARDED = "transmis"
    DONE = "fait"


class StaffTask(RecordMixin, Base):
    """Something a person must do for a youth: call them, answer an alert, check a
    document. Built and closed only by staff/tasks.py."""

    __tablename__ = "staff_task"
    __table_args__ = (Index("ix_staff_task_assignee_id_done_at", "assignee_id", "done_at"),)

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    # What makes the task distinct (the outreach attempt, the request, the birthday year):
    # the same reason never opens two tasks, even when two schedulers run.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[TaskKind] = mapped_column(str_enum(TaskKind, "staff_task_kind"))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outreach_attempt_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_attempt.id", ondelete="SET NULL")
    )
    aid_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("aid_request.id", ondelete="CASCADE")
    )
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointment.id", ondelete="CASCADE")
    )
    # Facts known when the task opened, shown with it (channels that failed, the
    # documents received, the birthday): plain words and codes, never a phone or email.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Moved to the supervisor because it stayed open past its due date.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[TaskOutcome | None] = mapped_column(str_enum(TaskOutcome, "task_outcome"))
    closed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    # The closing note, kept in the encrypted follow-up journal.
    note_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("follow_up_note.id", ondelete="SET NULL")
    )
