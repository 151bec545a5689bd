"""Small helpers every route module uses: the routes' class, a 303, the public base URL, a
query value read as an enum."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any, Generic, TypeVar, overload

from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from paris_avenir.config import Settings

E = TypeVar("E", bound=Enum)


T = TypeVar("T")


class InEndpointThread(Generic[T]):
    """The value of a dependency declared with in_endpoint_thread: computed, once, in the
    worker thread of the endpoint that receives it (web.routing.Route), not in a thread of
    its own. FastAPI runs each sync dependency in a worker thread; a signed-in page then
    paid a hand-off for the sign-in check and another for the page (a quarter of a
    millisecond of CPU each, issue 17)."""

    __slots__ = ("_arguments", "_compute", "_computed", "_value")

    def __init__(self, compute: Callable[..., T], arguments: dict[str, Any]) -> None:
        self._compute = compute
        self._arguments = arguments
        self._computed = False
        self._value: T | None = None

    def value(self) -> T:
        # FastAPI hands the same object to every dependant of one request (its dependency
        # cache): computed once, like the dependency it stands for.
        if not self._computed:
            self._value = self._compute(
                **{name: resolved(value) for name, value in self._arguments.items()}
            )
            self._computed = True
        return self._value  # type: ignore[return-value]


def resolved(value: Any) -> Any:
    return value.value() if isinstance(value, InEndpointThread) else value


def in_endpoint_thread(
    dependency: Callable[..., T], *, on_the_loop: Callable[..., None] | None = None
) -> Callable[..., Any]:
    """A sync dependency, computed in its endpoint's thread (InEndpointThread). FastAPI
    reads the dependency's own parameters (functools.wraps) and awaits this on the event
    loop, where it only keeps its arguments, after `on_the_loop(**arguments)` (a check
    that needs no I/O, such as "no session cookie at all", may refuse there at once, before
    FastAPI validates the page's own parameters). Only for parameters of endpoints and of
    other such dependencies: Route refuses it in a route's `dependencies=[...]`, where no
    endpoint would ever compute it."""

    @functools.wraps(dependency)
    async def deferred(**arguments: Any) -> InEndpointThread[T]:
        if on_the_loop is not None:
            on_the_loop(**arguments)
        return InEndpointThread(dependency, arguments)

    deferred.__in_endpoint_thread__ = True  # type: ignore[attr-defined]
    return deferred


class Route(APIRoute):
    """Every router's route class (`APIRouter(route_class=Route)`): a sync endpoint commits
    its request's session in its own worker thread, as it returns. db.get_session then finds
    the transaction ended and closes the session on the event loop, instead of a thread hop
    of its own to commit (one of a signed-in page's three; issue 17). The commit still
    happens before the response leaves. An endpoint that raises leaves the session to
    get_session, which rolls back (or commits a CommittedHTTPException's audit entry)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        for declared in kwargs.get("dependencies") or ():
            if getattr(declared.dependency, "__in_endpoint_thread__", False):
                raise TypeError(
                    f"{path}: {declared.dependency.__name__} is computed by the endpoint that "
                    "receives it; declare it as a parameter, not in dependencies=[...]"
                )
        if inspect.iscoroutinefunction(endpoint):
            endpoint = _resolving_in_a_thread(endpoint)
        else:
            endpoint = _committing_as_it_returns(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _committing_as_it_returns(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the signature (inspect follows __wrapped__): FastAPI reads the
    # same parameters and dependencies.
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs = {name: resolved(value) for name, value in kwargs.items()}
        response = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
        return response

    return run


def _resolving_in_a_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # An async endpoint computes its in-thread dependencies in one worker thread, together.
    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(value, InEndpointThread) for value in kwargs.values()):
            kwargs = await run_in_threadpool(
                lambda: {name: resolved(value) for name, value in kwargs.items()}
            )
        return await endpoint(*args, **kwargs)

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
