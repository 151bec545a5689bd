"""SMS replies: a message received by SMS, and the supervisors' queue of the unmatched ones

Revision ID: 55b196fb459b
Revises: 316675305cca
Create Date: 2026-12-03 07:38:16.489185+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paris_avenir.db


revision: str = "55b196fb459b"
down_revision: str | None = "316675305cca"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_sms",
        sa.Column("received_at", paris_avenir.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sender_last_digits", sa.String(length=2), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("candidate_ids", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "a_rattacher",
                "rattache",
                "ecarte",
                name="inbound_sms_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("resolved_at", paris_avenir.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            paris_avenir.db.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "modified_at",
            paris_avenir.db.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_inbound_sms_message_id_message"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["staff_user.id"],
            name=op.f("fk_inbound_sms_resolved_by_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_sms")),
    )
    with op.batch_alter_table("inbound_sms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_sms_status_received_at", ["status", "received_at"], unique=False
        )

    # A plain ADD COLUMN: no rebuild of `message` on SQLite (a rebuild would cascade-delete
    # the rows of message_attachment that reference it).
    with op.batch_alter_table("message", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column(
                "received_by_sms", sa.Boolean(), server_default=sa.text("(false)"), nullable=False
            )
        )



def downgrade() -> None:
    with op.batch_alter_table("message", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("received_by_sms")

    with op.batch_alter_table("inbound_sms", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_sms_status_received_at")

    op.drop_table("inbound_sms")
