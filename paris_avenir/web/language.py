"""The language switch of every page, the web app manifest, the service worker and the
offline page it shows."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paris_avenir.web import i18n
from paris_avenir.web.middleware import LOCALE_COOKIE
from paris_avenir.web.routing import Route

router = APIRouter(route_class=Route)

ONE_YEAR = 365 * 24 * 3600


def remember_language(response: Response, locale_code: str, *, secure: bool) -> None:
    """The choice of this browser, read before anyone signs in (LocaleMiddleware)."""
    response.set_cookie(
        LOCALE_COOKIE,
        locale_code,
        max_age=ONE_YEAR,
        samesite="lax",
        httponly=True,
        secure=secure,
        path="/",
    )


def chosen_language(request: Request) -> str | None:
    """The language picked with the switch on this phone, if any."""
    chosen = request.cookies.get(LOCALE_COOKIE)
    return chosen if i18n.is_offered(chosen) else None


def safe_next(raw: str | None, default: str) -> str:
    """Only a path of this site: never an open redirect to another host. Browsers drop
    tabs and newlines from URLs ("/\t/evil.example" becomes "//evil.example"), so any
    control character or space is refused, like a backslash or a second leading slash."""
    if (
        raw
        and raw.startswith("/")
        and not raw.startswith("//")
        and "\\" not in raw
        and all(" " < character != "\x7f" for character in raw)
    ):
        return raw
    return default


@router.post("/langue", include_in_schema=False)
def choose_language(
    request: Request,
    langue: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "/",
) -> Response:
    if not i18n.is_offered(langue):
        langue = i18n.SOURCE_LOCALE
    # Only what this browser shows. The language of a signed-in youth's SMS and emails is
    # not changed here: reading one page in another language (a friend's, a test) silently
    # switched them. The profile asks "Recevoir aussi les SMS et e-mails en …?" instead.
    response = RedirectResponse(safe_next(suite, "/"), status_code=303)
    remember_language(response, langue, secure=request.app.state.settings.is_prod)
    return response


@router.get("/manifest.webmanifest", include_in_schema=False)
def manifest(request: Request) -> Response:
    static_url = request.app.state.templates.globals["static_url"]
    body = {
        "name": "Paris avenir – Jeunes de l’ASE",
        "short_name": "Paris avenir",
        "start_url": "/mon-espace",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#163d68",
        "icons": [{"src": static_url("favicon.svg"), "sizes": "any", "type": "image/svg+xml"}],
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": "public, max-age=86400"},
    )


OFFLINE_PATH = "/hors-ligne"


@router.get("/sw.js", include_in_schema=False)
def service_worker(request: Request) -> Response:
    """Served from the root so that its scope is the whole site. It keeps only the offline
    page and the two files that page needs; private pages are never stored."""
    static_url = request.app.state.templates.globals["static_url"]
    precached = [OFFLINE_PATH, static_url("css/app.css"), static_url("favicon.svg")]
    # The cache name changes with the stylesheet, so a deploy replaces the old cache.
    cache_name = "paris-avenir-" + static_url("css/app.css").split("/")[2]
    script = (
        request.app.state.templates.get_template("service_worker.js")
        .render(cache_name=json.dumps(cache_name), precached=json.dumps(precached))
        .strip()
    )
    return Response(
        script,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get(OFFLINE_PATH, include_in_schema=False)
def offline_page(request: Request) -> HTMLResponse:
    """The same words in every language (a shared phone may have changed language since the
    page was stored), and nothing personal."""
    lines = []
    for code, _name in i18n.LANGUAGES:
        with i18n.using_locale(code):
            shown = code if i18n.is_translated("Pas de connexion internet.") else "fr"
            lines.append(
                {
                    "lang": i18n.html_lang(shown),
                    "dir": i18n.text_direction(shown),
                    "title": i18n.gettext("Pas de connexion internet."),
                    "advice": i18n.gettext(
                        "Vos informations sont en sécurité. Réessayez quand vous avez du réseau "
                        "ou du wifi."
                    ),
                }
            )
    html = i18n.mark_untranslated(
        request.app.state.templates.get_template("offline.html").render(lines=lines)
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
