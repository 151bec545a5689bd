"""Youth files anonymised 2 years after the last contact (retention.files): when it was done

Revision ID: e0264c8760fb
Revises: 1312f1820cbf
Create Date: 2026-12-02 13:51:37.454075+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paris_avenir.db


revision: str = "e0264c8760fb"
down_revision: str | None = "1312f1820cbf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("youth", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("anonymised_at", paris_avenir.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    # In place (SQLite 3.35+ drops a plain column): recreating the youth table would, with
    # foreign keys on, cascade its DROP to every row that references a youth.
    with op.batch_alter_table("youth", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("anonymised_at")
