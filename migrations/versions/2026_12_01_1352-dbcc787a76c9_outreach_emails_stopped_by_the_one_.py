"""outreach emails stopped by the one-click unsubscribe

Revision ID: dbcc787a76c9
Revises: 793f73ba9499
Create Date: 2026-12-01 13:52:24.636433+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paris_avenir.db


revision: str = "dbcc787a76c9"
down_revision: str | None = "793f73ba9499"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("youth", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "outreach_email_opted_out_at",
                paris_avenir.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )



def downgrade() -> None:
    with op.batch_alter_table("youth", schema=None) as batch_op:
        batch_op.drop_column("outreach_email_opted_out_at")

