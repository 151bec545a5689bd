"""encrypted columns, outbox texts kept until sent, audit log retention

Revision ID: cfda6be730de
Revises: d2b9dcea96de
Create Date: 2026-12-01 12:49:56.960743+00:00

Encrypts, with the data-at-rest keys (kit.crypto, the same as documents), what the rows
already hold: message bodies, the outbox texts still to send (the texts of messages already
final are erased), request answers, decision reasons, and the youth's former-unaccompanied-
minor flag, housing, income and family support. The audit log keeps networks instead of
addresses, and only its purge function may DELETE from it.

On SQLite the tables whose column types change are rebuilt (batch mode). Dropping a table
that others reference would, with foreign keys on, delete the referencing rows (ON DELETE
CASCADE), and that pragma cannot change inside a transaction: as SQLite's documented
procedure for rebuilding a table says, the migration commits what came before, turns foreign
keys off, rebuilds, checks them (PRAGMA foreign_key_check) and turns them back on.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

import paris_avenir.db
from paris_avenir.migrate import rebuilt
from paris_avenir.kit.crypto import decrypt_at_rest, encrypt_at_rest, minimised_ip

revision: str = "cfda6be730de"
down_revision: str | None = "d2b9dcea96de"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERASED = "[effacé]"
FINAL_STATUSES = ("sent", "delivered", "failed", "cancelled")
HOUSING_VALUES = ("stable", "temporaire", "urgence", "rue", "inconnu")
# The purge may never delete an entry younger than this, whatever cutoff it is given: the
# smallest retention an admin can set (audit.service.RETENTION_MONTHS_RANGE).
FLOOR = "6 months"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _as_bool_text(value: Any) -> str:
    return "true" if str(value).strip().lower() in {"1", "true", "t"} else "false"


def _as_json_text(value: Any) -> str:
    loaded = json.loads(value) if isinstance(value, str) else value
    return json.dumps(loaded, ensure_ascii=False, separators=(",", ":"))


def _rewrite(table: str, column: str, change: Callable[[Any], str | None]) -> None:
    """Each non-null value of table.column, replaced by change(value)."""
    bind = op.get_bind()
    rows = sa.table(table, sa.column("id", sa.Uuid()), sa.column(column, sa.Text()))
    for row_id, value in bind.execute(
        sa.select(rows.c.id, rows.c[column]).where(rows.c[column].is_not(None))
    ).all():
        bind.execute(sa.update(rows).where(rows.c.id == row_id).values({column: change(value)}))


def _encrypt(serialise: Callable[[Any], str]) -> Callable[[Any], str]:
    dialect = op.get_bind().dialect
    return lambda value: encrypt_at_rest(serialise(value), dialect)


def _decrypt(value: Any) -> str:
    return decrypt_at_rest(str(value), op.get_bind().dialect)


def _audit_triggers_off() -> None:
    if _is_sqlite():
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_purge(timestamptz)")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")


def upgrade() -> None:
    op.create_table(
        "audit_purge_permit",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_purge_permit")),
    )
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.add_column(
            sa.Column(
                "content_erased_at", paris_avenir.db.UTCDateTime(timezone=True), nullable=True
            )
        )

    # Column types: the encrypted values are Fernet tokens, in TEXT; no server default (it
    # would be clear text) and no CHECK on the housing values (the database cannot read them).
    with rebuilt("youth") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_youth_housing_situation"), type_="check")
        for column, existing in (
            ("former_unaccompanied_minor", sa.Boolean()),
            ("housing_situation", sa.String(length=32)),
            ("monthly_income_cents", sa.Integer()),
            ("has_family_support", sa.Boolean()),
        ):
            batch_op.alter_column(
                column,
                existing_type=existing,
                type_=sa.Text(),
                server_default=None,
                postgresql_using=f"{column}::text",
            )
    with rebuilt("aid_request") as batch_op:
        batch_op.alter_column(
            "form_data",
            existing_type=sa.JSON(),
            type_=sa.Text(),
            existing_nullable=False,
            postgresql_using="form_data::text",
        )

    # The values already there.
    _rewrite("youth", "former_unaccompanied_minor", _encrypt(_as_bool_text))
    _rewrite("youth", "has_family_support", _encrypt(_as_bool_text))
    _rewrite("youth", "housing_situation", _encrypt(str))
    _rewrite("youth", "monthly_income_cents", _encrypt(lambda value: str(int(value))))
    _rewrite("aid_request", "form_data", _encrypt(_as_json_text))
    _rewrite("aid_request", "decision_reason", _encrypt(str))
    _rewrite("aid_request_event", "reason", _encrypt(str))
    _rewrite("message", "body", _encrypt(str))
    outbox = sa.table(
        "outbox_message",
        sa.column("status", sa.String()),
        sa.column("body_text", sa.Text()),
        sa.column("body_html", sa.Text()),
        sa.column("subject", sa.String()),
        sa.column("attachment_body", sa.Text()),
        sa.column("content_erased_at", paris_avenir.db.UTCDateTime()),
    )
    # A final message will never leave again: its text (perhaps a code) goes now.
    op.get_bind().execute(
        sa.update(outbox)
        .where(outbox.c.status.in_(FINAL_STATUSES))
        .values(
            body_text=ERASED,
            body_html=None,
            subject=None,
            attachment_body=None,
            content_erased_at=datetime.now(UTC),
        )
    )
    for column in ("body_text", "body_html", "attachment_body"):
        _rewrite("outbox_message", column, _encrypt(str))

    # The audit log: networks instead of addresses, written while its triggers are off, then
    # the triggers that refuse UPDATE always and DELETE outside the purge.
    _audit_triggers_off()
    _rewrite("audit_event", "ip_address", lambda value: minimised_ip(str(value)))
    if _is_sqlite():
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
        )
        # UTCDateTime stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC on SQLite, which compares
        # as text with datetime('now', …).
        op.execute(
            "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
            "WHEN NOT EXISTS (SELECT 1 FROM audit_purge_permit) "
            f"OR OLD.occurred_at >= datetime('now', '-{FLOOR}') "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
        )
        return
    op.execute(
        "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'DELETE' AND current_setting('paris_avenir.audit_purge', true) = 'on' "
        f"AND OLD.occurred_at < now() - interval '{FLOOR}' THEN RETURN OLD; END IF; "
        "RAISE EXCEPTION 'audit_event is append-only'; "
        "END; $$"
    )
    for name, when in (("no_update", "UPDATE"), ("no_delete", "DELETE")):
        op.execute(
            f"CREATE TRIGGER audit_event_{name} BEFORE {when} ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
    )
    # The one way to delete entries: the setting is on only for this DELETE, in this
    # transaction. SECURITY DEFINER, so that a deployment may also REVOKE DELETE on the table
    # from the application's role and keep the purge working.
    op.execute(
        "CREATE FUNCTION audit_event_purge(cutoff timestamptz) RETURNS integer "
        "LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$ "
        "DECLARE deleted integer; "
        "BEGIN "
        "PERFORM set_config('paris_avenir.audit_purge', 'on', true); "
        f"DELETE FROM audit_event WHERE occurred_at < LEAST(cutoff, now() - interval '{FLOOR}'); "
        "GET DIAGNOSTICS deleted = ROW_COUNT; "
        "PERFORM set_config('paris_avenir.audit_purge', 'off', true); "
        "RETURN deleted; "
        "END; $$"
    )


def downgrade() -> None:
    # Addresses stay minimised and erased outbox texts stay erased: neither comes back.
    _audit_triggers_off()
    if _is_sqlite():
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
        )
    else:
        op.execute(
            "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_event is append-only'; END; $$"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    for table, column in (
        ("outbox_message", "body_text"),
        ("outbox_message", "body_html"),
        ("outbox_message", "attachment_body"),
        ("message", "body"),
        ("aid_request_event", "reason"),
        ("aid_request", "decision_reason"),
        ("aid_request", "form_data"),
        ("youth", "housing_situation"),
        ("youth", "monthly_income_cents"),
    ):
        _rewrite(table, column, _decrypt)
    # SQLite keeps booleans as 0 and 1; PostgreSQL casts 'true' and 'false'.
    true, false = ("1", "0") if _is_sqlite() else ("true", "false")
    for column in ("former_unaccompanied_minor", "has_family_support"):
        _rewrite("youth", column, lambda value: true if _decrypt(value) == "true" else false)
    with rebuilt("aid_request") as batch_op:
        batch_op.alter_column(
            "form_data",
            existing_type=sa.Text(),
            type_=sa.JSON(),
            existing_nullable=False,
            postgresql_using="form_data::json",
        )
    with rebuilt("youth") as batch_op:
        for column, back, cast, default in (
            ("former_unaccompanied_minor", sa.Boolean(), "boolean", sa.text("false")),
            ("housing_situation", sa.String(length=32), "varchar(32)", sa.text("'inconnu'")),
            ("monthly_income_cents", sa.Integer(), "integer", None),
            ("has_family_support", sa.Boolean(), "boolean", None),
        ):
            batch_op.alter_column(
                column,
                existing_type=sa.Text(),
                type_=back,
                server_default=default,
                postgresql_using=f"{column}::{cast}",
            )
        values = ", ".join(f"'{value}'" for value in HOUSING_VALUES)
        batch_op.create_check_constraint(
            batch_op.f("ck_youth_housing_situation"), f"housing_situation IN ({values})"
        )
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.drop_column("content_erased_at")
    op.drop_table("audit_purge_permit")
