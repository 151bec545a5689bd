"""Small helpers every route module uses: the routes' class, a 303, the public base URL, a
query value read as an enum."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, overload

from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from paris_avenir.config import Settings

E = TypeVar("E", bound=Enum)


class Route(APIRoute):
    """Every router's route class (`APIRouter(route_class=Route)`): a sync endpoint commits
    its request's session in its own worker thread, as it returns. db.get_session then finds
    the transaction ended and closes the session on the event loop, instead of a thread hop
    of its own to commit (one of a signed-in page's three; issue 17). The commit still
    happens before the response leaves. An endpoint that raises leaves the session to
    get_session, which rolls back (or commits a CommittedHTTPException's audit entry)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _committing_as_it_returns(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _committing_as_it_returns(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the signature (inspect follows __wrapped__): FastAPI reads the
    # same parameters and dependencies.
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        response = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
        return response

    return run


def see_other(location: str) -> RedirectResponse:
    """After a form: the browser GETs the next page (no resubmission on reload)."""
    return RedirectResponse(location, status_code=303)


def settings_of(request: Request) -> Settings:
    """The app's settings, as every route module reads them."""
    settings: Settings = request.app.state.settings
    return settings


def base_url(request: Request) -> str:
    """Where links in SMS and emails point (PARIS_AVENIR_BASE_URL)."""
    settings: Settings = request.app.state.settings
    return settings.base_url


@overload
def parse_enum(value: str, enum_class: type[E], default: E) -> E: ...
@overload
def parse_enum(value: str, enum_class: type[E], default: None) -> E | None: ...
def parse_enum(value: str, enum_class: type[E], default: E | None) -> E | None:
    """`value` as a member of `enum_class`; `default` for anything else (a hand-edited URL)."""
    try:
        return enum_class(value)
    except ValueError:
        return default
