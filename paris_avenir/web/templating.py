"""One template serves both the full page and its HTMX fragment.

A plain request (or an hx-boost navigation, which needs the whole page for its title and
body) gets the full page; a targeted HTMX request gets only the `content` block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

from babel import dates as babel_dates
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import (
    BytecodeCache,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_eval_context,
    select_autoescape,
)
from jinja2.bccache import Bucket
from jinja2.nodes import EvalContext
from jinja2_fragments import render_block
from markupsafe import Markup
from sqlalchemy.orm import Session

from paris_avenir.config import PROJECT_ROOT
from paris_avenir.kit import phone as phones
from paris_avenir.kit.dates import PARIS, paris_day, paris_today
from paris_avenir.kit.forms import format_euros
from paris_avenir.web import i18n
from paris_avenir.web.static_assets import StaticAssets

TEMPLATES_DIR = PROJECT_ROOT / "templates"
FRAGMENT_BLOCK = "content"


class ProcessBytecodeCache(BytecodeCache):
    """Compiled templates shared by every environment of the process. Jinja keys each entry
    by template name and checks the source's checksum on load, so an edited template is
    compiled again. One app per process compiles each template once anyway; the test suite
    builds an app per test, and compiling costs about 7 ms a template, loading 0.2 ms."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = ProcessBytecodeCache()


# Jinja's new-style gettext, minus two costs paid on every text of every page: `_` looks
# `gettext` up in the context at each call, and the result is always %-formatted, even a
# text with no "%" (where formatting changes nothing). Same output, 3.1 µs a text instead
# of 5.6 µs (timeit, 400 texts); a page shows 50 to 150 of them.
#
# They take the evaluation context, not the context: Jinja copies the whole context
# (Context.derived) before each call of a pass_context function inside a block or a loop,
# which is where nearly every text is (a fifth of a page's rendering, cProfile).
@pass_eval_context
def _template_gettext(eval_context: EvalContext, message: str, /, **variables: Any) -> str:
    text = i18n.raw_gettext(message)
    if eval_context.autoescape:
        text = Markup(text)  # noqa: S704 -- a catalog text, escaped by Jinja's own rule
    return text % variables if "%" in text else text


@pass_eval_context
def _template_ngettext(
    eval_context: EvalContext, singular: str, plural: str, count: int, /, **variables: Any
) -> str:
    variables.setdefault("num", count)
    text = i18n.raw_ngettext(singular, plural, count)
    if eval_context.autoescape:
        text = Markup(text)  # noqa: S704 -- a catalog text, escaped by Jinja's own rule
    return text % variables if "%" in text else text


def build_environment(static_assets: StaticAssets) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        bytecode_cache=COMPILED_TEMPLATES,
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates change with a release, like the code: no stat() of each template, its
        # layouts and includes on every page (six a page) to see whether it changed.
        auto_reload=False,
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.raw_gettext, i18n.raw_ngettext, newstyle=True
    )
    environment.globals.update(
        _=_template_gettext, gettext=_template_gettext, ngettext=_template_ngettext
    )
    environment.globals.update(
        static_url=static_assets.url,
        get_locale=i18n.get_locale,
        text_direction=i18n.text_direction,
        html_lang=i18n.html_lang,
        languages=i18n.LANGUAGES,
    )
    environment.filters.update(
        datetime_paris=format_datetime_paris,
        moment_short=format_moment_short,
        day_paris=format_day_paris,
        time_paris=format_time_paris,
        date_long=format_date_long,
        day_relative=format_day_relative,
        when_relative=format_when_relative,
        phone=phone_display,
        euros=amount_display,
    )
    return environment


# Dates, times, amounts and phone numbers are isolated (<bdi>) so that right-to-left text
# around them cannot reorder their parts; digits-only values are also forced left-to-right.


def _isolated(text: str, *, left_to_right: bool) -> Markup:
    if not text:
        return Markup("")
    if left_to_right:
        return Markup('<bdi dir="ltr">{}</bdi>').format(text)
    return Markup("<bdi>{}</bdi>").format(text)


# Every date a youth reads carries its weekday ("mardi 8 décembre"): a date alone is hard to
# place in a week, more so in a second language. The patterns come from each language's
# catalogue (datetime) or from Babel's "full" date format, which names the weekday in all.


def _datetime_text(value: datetime) -> str:
    return babel_dates.format_datetime(
        value, i18n.gettext("EEEE d MMMM y 'à' HH:mm"), tzinfo=PARIS, locale=i18n.get_locale()
    )


def format_datetime_paris(value: datetime | None) -> Markup:
    """ "vendredi 27 novembre 2026 à 14:30", in Paris time and the reader's language."""
    if value is None:
        return Markup("")
    return _isolated(_datetime_text(value), left_to_right=False)


def format_moment_short(value: datetime) -> Markup:
    """ "mar. 1 déc. 14:30": a slot to propose on the phone, weekday first (staff pages;
    Babel names the weekday and month in the reader's language)."""
    text = babel_dates.format_datetime(
        value, "EEE d MMM HH:mm", tzinfo=PARIS, locale=i18n.get_locale()
    )
    return _isolated(text, left_to_right=False)


def format_day_paris(value: datetime) -> Markup:
    """ "mercredi 3 décembre": the weekday helps more than the year on a near date."""
    text = babel_dates.format_datetime(value, "EEEE d MMMM", tzinfo=PARIS, locale=i18n.get_locale())
    return _isolated(text, left_to_right=False)


def format_time_paris(value: datetime) -> Markup:
    """ "14:30" in Paris time."""
    text = babel_dates.format_time(value, "HH:mm", tzinfo=PARIS, locale=i18n.get_locale())
    return _isolated(text, left_to_right=True)


def _paris_date(value: date | datetime) -> date:
    return paris_day(value) if isinstance(value, datetime) else value


def _date_text(value: date) -> str:
    return babel_dates.format_date(value, "full", locale=i18n.get_locale())


def format_date_long(value: date | datetime | None) -> Markup:
    """ "jeudi 3 décembre 2026"; an instant is first read in Paris time (its date there)."""
    if value is None:
        return Markup("")
    return _isolated(_date_text(_paris_date(value)), left_to_right=False)


def _relative(day: date, text: str) -> str:
    """ "Aujourd’hui, …" / "Demain, …" before a date of today or tomorrow in Paris."""
    today = paris_today()
    if day == today:
        return i18n.gettext("Aujourd’hui, %(date)s", date=text)
    if day == today + timedelta(days=1):
        return i18n.gettext("Demain, %(date)s", date=text)
    return text


def format_day_relative(value: date | datetime) -> Markup:
    """ "Demain, mercredi 9 décembre 2026": a day of the slot picker."""
    day = _paris_date(value)
    return _isolated(_relative(day, _date_text(day)), left_to_right=False)


def format_when_relative(value: datetime) -> Markup:
    """ "Aujourd’hui, mardi 8 décembre 2026 à 14:30": an upcoming appointment."""
    return _isolated(_relative(_paris_date(value), _datetime_text(value)), left_to_right=False)


def phone_display(value: str | None) -> Markup:
    return _isolated(phones.format_for_display(value) if value else "", left_to_right=True)


def amount_display(value: Any) -> Markup:
    return _isolated(format_euros(value), left_to_right=True)


def wants_fragment(request: Request) -> bool:
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def _signed_in_as(request: Request) -> str | None:
    """ "youth", "staff" or None, from the function the application registered
    (auth.sessions.signed_in_as): the page shell knows no sign-in tables itself."""
    finder = getattr(request.app.state, "signed_in_as", None)
    return finder(request) if finder is not None else None


def template_context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    csrf_token = request.scope.get("csrftoken")
    return {
        "request": request,
        "csrf_token": csrf_token() if csrf_token else "",
        # Set by the sign-in dependencies: the navigation adapts to who is reading.
        "viewer_youth": getattr(request.state, "viewer_youth", None),
        "viewer_staff": getattr(request.state, "viewer_staff", None),
        # Pages without those dependencies: only who is signed in, for the header.
        # (An HTMX fragment has no header: no query for it.)
        "signed_in_as": None if wants_fragment(request) else _signed_in_as(request),
        "viewer_referent": getattr(request.state, "viewer_referent", None),
        "open_task_count": getattr(request.state, "open_task_count", None),
        "show_language_bar": not i18n.is_back_office(request.url.path),
        # Where the language switch brings the reader back.
        "return_path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        # Optional messages most pages may show; absent unless a handler sets them.
        "error": None,
        "notice": None,
        **context,
    }


def render(
    request: Request,
    template_name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    environment: Environment = request.app.state.templates
    full_context = template_context(request, context or {})
    response_headers = {"Vary": "HX-Request", **(headers or {})}
    if wants_fragment(request):
        html = render_block(environment, template_name, FRAGMENT_BLOCK, full_context)
    else:
        html = environment.get_template(template_name).render(full_context)
    html = i18n.mark_untranslated(html)
    return HTMLResponse(html, status_code=status_code, headers=response_headers)


Reader = TypeVar("Reader")


@dataclass(frozen=True)
class FormPage(Generic[Reader]):
    """A staff page with a form, shown again with its refusal when a submission is refused:
    the template gets the reader (`staff`), the `error` if any, and what `build(session,
    reader)` returns."""

    template_name: str
    build: Callable[[Session, Reader], dict[str, Any]]

    def __call__(
        self,
        request: Request,
        session: Session,
        staff: Reader,
        *,
        error: str | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        context = {"staff": staff, "error": error, **self.build(session, staff)}
        return render(request, self.template_name, context, status_code=status_code)
