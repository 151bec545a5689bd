"""Small helpers every route module uses: a 303, the public base URL, a query value read as
an enum."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar, overload

from fastapi import Request
from fastapi.responses import RedirectResponse

from paris_avenir.config import Settings

E = TypeVar("E", bound=Enum)


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
