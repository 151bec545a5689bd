from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum
from paris_avenir.kit.crypto import EncryptedBool, EncryptedInt, EncryptedStrEnum


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"


class HousingSituation(enum.StrEnum):
    STABLE = "stable"  # own lease or social housing
    TEMPORARY = "temporaire"  # friends, family, youth hostel, hotel
    EMERGENCY = "urgence"  # 115, shelter
    STREET = "rue"
    UNKNOWN = "inconnu"


class EmploymentSituation(enum.StrEnum):
    PERMANENT_JOB = "cdi"
    TEMPORARY_JOB = "cdd_interim"
    APPRENTICESHIP = "apprentissage"
    STUDENT = "etudes"
    TRAINING = "formation"
    JOB_SEEKING = "recherche"
    NONE = "sans_activite"
    UNKNOWN = "inconnu"


AT_REST = "encrypted_at_rest"  # the deferred group of Youth's encrypted columns


class Youth(RecordMixin, Base):
    """A young adult (18–25) who left ASE care."""

    __tablename__ = "youth"
    __table_args__ = (Index("ix_youth_last_activity_at", "last_activity_at"),)

    ase_ref: Mapped[str] = mapped_column(String(40), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date]
    # E.164 (+33639980012); validated by the phone module, never logged.
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    language: Mapped[str] = mapped_column(String(10), default="fr", server_default="fr")
    preferred_channel: Mapped[Channel] = mapped_column(
        str_enum(Channel, "channel"), default=Channel.SMS, server_default=Channel.SMS.value
    )
    # "Messages détaillés": the SMS and emails may say what a request or an appointment is
    # about (never an amount in an SMS). False, the default: "messages discrets", nothing a
    # lock screen or a shared phone could betray (no psychologist, no ASE, no aid's name, no
    # amount). Only the youth changes it, on their profile (messaging/notifications.py).
    detailed_messages: Mapped[bool] = mapped_column(default=False, server_default=text("false"))

    ase_exit_date: Mapped[date | None]
    # The most sensitive facts of the file (PRODUCT.md: immigration, housing, income, family)
    # are encrypted at rest (kit.crypto). Nothing filters or groups on them in SQL: who needs
    # them (eligibility, the youth's export, the file page) reads them in Python.
    # They are loaded (and decrypted, about 10 µs a value) only when read: a caseload page
    # shows 25 youths and none of these, and every page of the youth's space loads the youth.
    former_unaccompanied_minor: Mapped[bool] = mapped_column(
        EncryptedBool(), default=False, deferred=True, deferred_group=AT_REST
    )
    housing_situation: Mapped[HousingSituation] = mapped_column(
        EncryptedStrEnum(HousingSituation),
        default=HousingSituation.UNKNOWN,
        deferred=True,
        deferred_group=AT_REST,
    )
    employment_situation: Mapped[EmploymentSituation] = mapped_column(
        str_enum(EmploymentSituation, "employment_situation"),
        default=EmploymentSituation.UNKNOWN,
        server_default=EmploymentSituation.UNKNOWN.value,
    )
    monthly_income_cents: Mapped[int | None] = mapped_column(
        EncryptedInt(), deferred=True, deferred_group=AT_REST
    )
    has_family_support: Mapped[bool | None] = mapped_column(
        EncryptedBool(), deferred=True, deferred_group=AT_REST
    )
    in_higher_education: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    lives_in_ile_de_france: Mapped[bool] = mapped_column(default=True, server_default=text("true"))

    # Account and consent.
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    franceconnect_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    outreach_opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Only outreach emails stopped (the one-click unsubscribe link of one of them).
    outreach_email_opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outreach_paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    phone_unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A person of the team reached someone else at this number ("mauvais numéro"): no
    # sign-in code goes to it (whoever holds it is not the youth) until the youth, signed
    # in another way, confirms it or proves a new one.
    phone_reported_wrong_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deletion_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Meaningful activity only (sign-in, request action, message, attended appointment,
    # check-in answer, a person of the team in touch): what the outreach cycle measures
    # quietness against. Written through youths.activity.record_activity() only.
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # PRODUCT.md "Retention": 2 years after the last contact, past 25, the file keeps only
    # what statistics need (retention.files). Staff pages and sign-in no longer find it.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class FollowUpNote(RecordMixin, Base):
    """An entry of the référent's follow-up journal; the text is encrypted at rest."""

    __tablename__ = "follow_up_note"

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    author_staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    # A Fernet token written by staff.journal with the documents' keys; marked so that the
    # key rotation (kit.crypto.rotate_encrypted_columns) re-encrypts it with the columns.
    body_encrypted: Mapped[str] = mapped_column(Text, info={"fernet_token": True})
    written_at: Mapped[datetime] = mapped_column(UTCDateTime())
    on_behalf_of_youth: Mapped[bool] = mapped_column(default=False, server_default=text("false"))


class ContactVerification(RecordMixin, Base):
    """A new phone number or email, waiting for the code sent to it."""

    __tablename__ = "contact_verification"

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    new_value: Mapped[str] = mapped_column(String(254))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wrong_tries: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
