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


def test_every_enum_check_constraint_lists_exactly_the_models_values(engine: Engine) -> None:
    """Alembic's comparison ignores CHECK constraints: an enum that gains a value in the
    models but not in a migration would only fail when a row uses it, in production."""
    import re

    from sqlalchemy import Enum

    inspector = inspect(engine)
    checked = 0
    for table in Base.metadata.sorted_tables:
        in_database = {
            constraint["name"]: set(re.findall(r"'([^']*)'", str(constraint["sqltext"])))
            for constraint in inspector.get_check_constraints(table.name)
        }
        for column in table.columns:
            if not isinstance(column.type, Enum) or column.type.name is None:
                continue
            name = f"ck_{table.name}_{column.type.name}"
            assert in_database.get(name) == set(column.type.enums), (table.name, column.name)
            checked += 1
    assert checked >= 20  # every enum column of the product, not a lucky few
