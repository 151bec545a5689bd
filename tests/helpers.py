"""What a browser does, for the HTTP tests: carry the CSRF token, sign in."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.config import Settings
from paris_avenir.staff.models import StaffUser
from paris_avenir.youths.models import Youth

T = TypeVar("T")

CODE_IN_TEXT = re.compile(r"\b(\d{6})\b")


async def csrf_token(client: httpx.AsyncClient, page: str = "/") -> str:
    html = (await client.get(page)).text
    match = re.search(r'"x-csrftoken": "([^"]+)"', html)
    assert match, "every page carries the CSRF token for htmx"
    return match.group(1)


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any
) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(url, data={"csrftoken": token, **(data or {})}, **kwargs)


def last_sms(settings: Settings) -> dict[str, Any]:
    lines = Path(settings.sms_file).read_text().splitlines()
    return dict(json.loads(lines[-1]))


def sms_count(settings: Settings) -> int:
    path = Path(settings.sms_file)
    return len(path.read_text().splitlines()) if path.exists() else 0


def code_in(text: str) -> str:
    match = CODE_IN_TEXT.search(text)
    assert match, f"no code in {text!r}"
    return match.group(1)


def sign_in_as(
    client: httpx.AsyncClient,
    app: FastAPI,
    session: Session,
    *,
    youth: Youth | None = None,
    staff: StaffUser | None = None,
) -> str:
    """Put a fresh server-side session in the client's cookie jar (no UI round trip)."""
    settings: Settings = app.state.settings
    new = sessions.start_session(
        session,
        youth_id=youth.id if youth else None,
        staff_id=staff.id if staff else None,
        method=AuthMethod.CODE if youth else AuthMethod.PASSWORD_TOTP,
    )
    session.commit()
    client.cookies.set(settings.session_cookie_name, new.token)
    return new.token


def at_once(count: int, action: Callable[[int], T]) -> list[T]:
    """`count` calls released together by a barrier, each in its own thread: a race."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
