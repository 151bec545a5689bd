"""A signed-in page costs one hand-off to a worker thread, not three (issue 17): the sign-in
check is computed in the page's own thread (web.routing.in_endpoint_thread), and the page
commits its request's transaction as it returns (web.routing.Route), so that
db.get_session closes the session on the event loop.
Hops are counted at anyio.to_thread.run_sync, which Starlette's thread pool and
db.get_session both go through."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.auth.dependencies import signed_in_youth
from paris_avenir.db import get_session
from paris_avenir.web.routing import Route
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_staff, create_youth
from tests.helpers import csrf_token, sign_in_as


def _name(function: Any) -> str:
    """What runs in the thread: through functools.partial and FastAPI's own wrapper."""
    while isinstance(function, functools.partial):
        function = function.keywords.get("function", function.func)
    return str(getattr(function, "__name__", function))


@pytest.fixture
def hops(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    # The real request session (db.get_session, on the test's connection), not the tests'
    # usual stand-in, whose sync generator makes hops of its own.
    app.dependency_overrides.pop(get_session)
    counted: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(function: Any, *args: Any, **kwargs: Any) -> Any:
        counted.append(_name(function))
        return await real(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    yield counted


async def test_the_youth_dashboard_takes_one_thread_hop(
    app: FastAPI, client: httpx.AsyncClient, session: Session, hops: list[str]
) -> None:
    youth = create_youth(session, first_name="Samia")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    hops.clear()
    page = await client.get("/mon-espace")
    assert page.status_code == 200 and "Bonjour Samia" in page.text
    assert hops == ["my_space"]


async def test_a_saved_form_is_committed_before_its_answer_leaves(
    app: FastAPI, client: httpx.AsyncClient, session: Session, hops: list[str]
) -> None:
    youth = create_youth(session, first_name="Samia", language="fr")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    token = await csrf_token(client)
    hops.clear()
    saved = await client.post(
        "/mon-espace/profil", data={"csrftoken": token, "langue": "en", "canal": "sms"}
    )
    assert saved.status_code == 303
    assert "_end_request_session" not in hops  # committed in the page's own hop
    session.expire_all()
    assert session.scalar(select(Youth.language).where(Youth.id == youth.id)) == "en"


async def test_a_staff_page_checks_the_sign_in_and_the_permission_in_its_one_hop(
    app: FastAPI, client: httpx.AsyncClient, session: Session, hops: list[str]
) -> None:
    referent = create_staff(session, full_name="Awa Diallo")
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    hops.clear()
    assert (await client.get("/pro")).status_code == 200
    assert hops == ["dashboard"]
    hops.clear()
    # The same check, in the page's hop, refuses what the role may not open (then the
    # request's transaction is rolled back in a hop of its own, as after any error).
    assert (await client.get("/pro/admin")).status_code == 403
    assert hops[1:] == ["_end_request_session"]
    assert not {"require_staff", "dependency"} & set(hops)


async def test_signed_out_the_sign_in_page_comes_at_once_without_a_hop(
    client: httpx.AsyncClient, hops: list[str]
) -> None:
    page = await client.get("/mon-espace")
    assert page.status_code == 303 and page.headers["location"] == "/connexion?suite=/mon-espace"
    # Before the page's own parameters are read: a malformed one does not turn it into 400.
    staff_page = await client.get("/pro?page=abc")
    assert staff_page.status_code == 303
    assert staff_page.headers["location"] == "/pro/connexion?suite=/pro"
    assert hops == []


async def test_with_a_dead_session_cookie_the_page_s_hop_sends_to_the_sign_in_page(
    client: httpx.AsyncClient, hops: list[str]
) -> None:
    client.cookies.set("session", "not-a-session-anybody-has")
    page = await client.get("/mon-espace")
    assert page.status_code == 303 and page.headers["location"] == "/connexion?suite=/mon-espace"
    assert hops[:1] == ["my_space"]  # the check ran there, and the page did not


def test_an_in_thread_dependency_cannot_be_declared_where_no_endpoint_computes_it() -> None:
    router = APIRouter(route_class=Route)
    with pytest.raises(TypeError, match="declare it as a parameter"):

        @router.get("/x", dependencies=[Depends(signed_in_youth)])
        def page() -> None: ...


async def test_the_sign_in_statement_names_the_current_referent_only(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    """The référent every youth page shows comes with the sign-in check's one statement
    (staff.assignments.with_current_referent): the current one, not an earlier one."""
    youth = create_youth(session, first_name="Samia")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    alone = (await client.get("/mon-espace")).text
    assert "Vous n’avez pas encore de référent" in alone

    earlier = create_staff(session, full_name="Paul Ancien")
    now = create_staff(session, full_name="Awa Diallo")
    assign(session, youth, earlier, ended_at=datetime.now(UTC) - timedelta(days=1))
    assign(session, youth, now)
    session.commit()
    page = (await client.get("/mon-espace")).text
    assert "Awa Diallo" in page and "Paul Ancien" not in page
