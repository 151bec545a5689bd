"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from paris_avenir.models import Base


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_every_table_of_the_product_exists(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    expected = {
        "youth",
        "staff_user",
        "team",
        "caseload_assignment",
        "aid",
        "aid_request",
        "aid_request_event",
        "document",
        "message_thread",
        "message",
        "weekly_availability",
        "availability_exception",
        "appointment",
        "outreach_attempt",
        "staff_task",
        "outbox_message",
        "outbox_status_event",
        "audit_event",
        "follow_up_note",
    }
    assert expected <= tables
