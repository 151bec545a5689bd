"""attestation code of a granted request

Revision ID: 316675305cca
Revises: e0264c8760fb
Create Date: 2026-12-02 17:59:28.708375+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paris_avenir.db


revision: str = "316675305cca"
down_revision: str | None = "e0264c8760fb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN and a unique index: no table rebuild on SQLite (a rebuild of
    # aid_request would cascade-delete the rows of aid_request_event that reference it).
    with op.batch_alter_table("aid_request", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("attestation_code", sa.String(length=12), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_aid_request_attestation_code"), ["attestation_code"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("aid_request", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(batch_op.f("ix_aid_request_attestation_code"))
        batch_op.drop_column("attestation_code")
