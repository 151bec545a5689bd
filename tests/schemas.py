"""A fresh PostgreSQL schema per test module or benchmark, so that each leaves the others'
tables alone (shared by tests/conftest.py and bench/)."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import text

from paris_avenir.db import create_database_engine


def fresh_schema_url(url: str, schema: str) -> str:
    """Drop and create `schema`, then return `url` with a search path on it. libpq's options
    travel in the URL itself, so a child process's connections search it too."""
    setup = create_database_engine(url)
    with setup.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    setup.dispose()
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"
