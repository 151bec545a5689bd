"""Rules of the code's shape that a reviewer would otherwise have to remember."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import get_session
from paris_avenir.web.routing import Route

PACKAGE = Path(__file__).resolve().parent.parent / "paris_avenir"


def _api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None) or getattr(route, "router", None)
        if nested is not None and hasattr(nested, "routes"):
            yield from _api_routes(nested.routes)


def _uses_database(dependant: object) -> bool:
    calls = [getattr(dependant, "call", None)]
    calls += [getattr(sub, "call", None) for sub in getattr(dependant, "dependencies", [])]
    return get_session in calls or any(
        _uses_database(sub) for sub in getattr(dependant, "dependencies", [])
    )


def test_no_async_handler_touches_the_database(tmp_path: Path) -> None:
    """An `async def` handler runs its synchronous database calls on the event loop: one lock
    wait (SQLite waits up to 20 s) would freeze every other request. Such handlers are
    plain `def`; the form comes from a dependency (web/forms.py FormDep)."""
    app: FastAPI = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.sqlite3'}"))
    routes = list(_api_routes(app.routes))
    assert len(routes) > 100  # the walk reaches the included routers
    offenders = [
        route.path
        for route in routes
        if asyncio.iscoroutinefunction(route.endpoint) and _uses_database(route.dependant)
    ]
    assert offenders == []


def test_one_writer_of_a_youths_last_activity() -> None:
    writers = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text().splitlines()
        if re.search(r"\blast_activity_at\s*=(?!=)", line)
    ]
    assert writers == ["youths/activity.py"]  # youths.activity.record_activity
    calls = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text().splitlines()
        if re.search(r"\bresponded_at\s*=(?!=)", line)
    ]
    # Crediting a response: the engine's listener; a check-in answers its own attempt.
    assert sorted(calls) == ["outreach/checkin.py", "outreach/engine.py", "outreach/engine.py"]


def test_the_app_subscribes_to_a_youths_activity(tmp_path: Path) -> None:
    """youths.activity cannot call the domains above it: they subscribe when imported, and
    the app imports them all. Without these, a sign-in would credit no outreach step and a
    wrong number would leave the code sessions open."""
    from paris_avenir.youths import activity

    create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.sqlite3'}"))
    on_activity, on_phone = activity.subscribers()
    assert on_activity == ["paris_avenir.outreach.engine.credit_activity"]
    assert on_phone == ["paris_avenir.auth.sessions.end_code_sessions"]


def test_every_route_computes_its_in_thread_dependencies(tmp_path: Path) -> None:
    """The sign-in and permission checks (auth.dependencies, auth.permissions) are computed
    by the endpoint's wrapper that web.routing.Route installs: a route of another class
    would receive them uncomputed, and a page that only declares its check would skip it."""
    app: FastAPI = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.sqlite3'}"))
    routes = list(_api_routes(app.routes))
    assert len(routes) > 100
    assert [route.path for route in routes if not isinstance(route, Route)] == []
