"""Appointments keep one calendar event across moves (series, sequence)

A moved appointment keeps the UID of the first one (series_id) and every change raises
calendar_sequence, so calendars update the event instead of adding a second one.

Revision ID: 3789f6d4a0b4
Revises: c81d9a72dae1
Create Date: 2026-12-01 13:52:01.436997+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from paris_avenir.migrate import rebuilt

revision: str = "3789f6d4a0b4"
down_revision: str | None = "c81d9a72dae1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with rebuilt("appointment") as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "calendar_sequence", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.create_index(batch_op.f("ix_appointment_series_id"), ["series_id"], unique=False)


def downgrade() -> None:
    with rebuilt("appointment") as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_series_id"))
        batch_op.drop_column("calendar_sequence")
        batch_op.drop_column("series_id")
