"""youth chooses detailed or discreet messages

Revision ID: 733ec5f787c7
Revises: 55b196fb459b
Create Date: 2026-12-03 07:38:14.230149+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paris_avenir.db


revision: str = "733ec5f787c7"
down_revision: str | None = "55b196fb459b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: no table rebuild on SQLite (a rebuild of youth would cascade-delete
    # the rows that reference it). Every youth starts with "messages discrets".
    with op.batch_alter_table("youth", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column(
                "detailed_messages", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("youth", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("detailed_messages")
