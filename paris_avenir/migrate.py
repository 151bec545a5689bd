"""Run the Alembic migrations from code (CLI, tests, `make run`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command, op
from alembic.config import Config
from alembic.operations import BatchOperations
from sqlalchemy import Engine

from paris_avenir.config import PROJECT_ROOT


def alembic_config() -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return config


def upgrade_to_head(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def foreign_keys_off() -> Iterator[None]:
    """In a migration, on SQLite: foreign keys off while tables are rebuilt.

    Batch mode rebuilds a table by dropping it, and with foreign keys on, dropping a table
    that others reference deletes the referencing rows (ON DELETE CASCADE). The pragma
    cannot change inside a transaction, so, as SQLite's documented procedure for rebuilding
    a table says: commit what came before, turn foreign keys off, rebuild, check them
    (PRAGMA foreign_key_check), turn them back on. Elsewhere, nothing to do."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    # The engine's connections run BEGIN themselves (paris_avenir.db), so the driver keeps
    # no transaction state of its own: the transaction can be ended and begun again here.
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.exec_driver_sql("BEGIN")
    yield
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=ON")
    bind.exec_driver_sql("BEGIN")


@contextmanager
def rebuilt(table: str) -> Iterator[BatchOperations]:
    """In a migration: alter `table`; on SQLite, rebuilt with foreign keys off."""
    with foreign_keys_off(), op.batch_alter_table(table) as batch:
        yield batch
