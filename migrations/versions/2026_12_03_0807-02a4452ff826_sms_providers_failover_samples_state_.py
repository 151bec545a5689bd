"""sms providers failover: samples, state, provider of a message

Revision ID: 02a4452ff826
Revises: 8d5f89f519a9
Create Date: 2026-12-03 08:07:11.373956+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paris_avenir.db


revision: str = "02a4452ff826"
down_revision: str | None = "8d5f89f519a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_failover_state",
        sa.Column("key", sa.String(length=20), nullable=False),
        sa.Column("active", sa.String(length=20), nullable=False),
        sa.Column("since", paris_avenir.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("switch_count", sa.Integer(), nullable=False),
        sa.Column("last_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sms_failover_state")),
    )
    op.create_table(
        "sms_provider_sample",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", paris_avenir.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("slow", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_provider_sample")),
    )
    with op.batch_alter_table("sms_provider_sample", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_provider_sample_provider_at", ["provider", "occurred_at"], unique=False
        )

    # A plain ADD COLUMN: no rebuild of outbox_message on SQLite (it would cascade-delete
    # the rows of outbox_status_event that reference it).
    with op.batch_alter_table("outbox_message", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("sms_provider", sa.String(length=20), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("sms_provider")

    with op.batch_alter_table("sms_provider_sample", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_provider_sample_provider_at")

    op.drop_table("sms_provider_sample")
    op.drop_table("sms_failover_state")
