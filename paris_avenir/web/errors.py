"""Error pages in the user's language: a full page, or a small toast for HTMX requests."""

from __future__ import annotations

import logging
from typing import Any

from cryptography.fernet import InvalidToken
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from paris_avenir.kit.errors import DomainError
from paris_avenir.web import i18n
from paris_avenir.web.i18n import N_
from paris_avenir.web.middleware import route_template
from paris_avenir.web.templating import render

logger = logging.getLogger(__name__)


# Title and plain-French lines of each error page, translated when displayed.
ERROR_TEXTS: dict[int | str, tuple[str, tuple[str, ...]]] = {
    400: (
        N_("Ce qui a été envoyé n’est pas correct"),
        (N_("Vérifiez ce que vous avez écrit, puis réessayez."),),
    ),
    403: (N_("Accès refusé"), (N_("Vous n’avez pas le droit d’ouvrir cette page."),)),
    "csrf": (
        N_("La page a expiré"),
        (
            N_("Pour votre sécurité, nous n’avons rien enregistré."),
            N_("Revenez en arrière, rechargez la page, puis réessayez."),
        ),
    ),
    404: (
        N_("Page introuvable"),
        (
            N_("Cette page n’existe pas, ou plus."),
            N_("Vérifiez l’adresse, ou revenez à l’accueil."),
        ),
    ),
    405: (N_("Action impossible"), (N_("Cette action n’est pas possible sur cette page."),)),
    410: (
        N_("Ce document n’est plus disponible"),
        (N_("Ajoutez-le de nouveau dans « Mes documents », puis prévenez votre référent."),),
    ),
    429: (
        N_("Trop d’essais"),
        (
            N_("Vous avez fait trop d’essais en peu de temps."),
            N_("Attendez quelques minutes, puis réessayez."),
        ),
    ),
    500: (
        N_("Un problème technique est arrivé"),
        (
            N_("Ce n’est pas de votre faute. Nous avons été prévenus."),
            N_("Réessayez dans quelques minutes."),
        ),
    ),
    503: (
        N_("Service indisponible"),
        (N_("Le service est arrêté pour quelques minutes."), N_("Réessayez plus tard.")),
    ),
}
# A refusal the route did not show on its own page (kit.errors.DomainError): its title, and
# the error's own message as the line, so the reader learns the real reason.
REFUSAL_TITLES: dict[int, str] = {
    409: N_("Ce n’est plus possible"),
    422: N_("Ce n’est pas possible"),
}
GENERIC_ERROR = (N_("Une erreur est arrivée"), (N_("Réessayez, ou revenez à l’accueil."),))


def error_context(key: int | str, status_code: int) -> dict[str, Any]:
    title, lines = ERROR_TEXTS.get(key, GENERIC_ERROR)
    return {
        "status_code": status_code,
        # The same bytes whatever the URL (a 404 must not tell one id from another).
        "return_path": "/",
        "error_title": i18n.gettext(title),
        "error_lines": [i18n.gettext(line) for line in lines],
    }


def _error_page(request: Request, status_code: int) -> Response:
    headers = {}
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true":
        # htmx ignores error statuses by default: retarget the answer to the toast region.
        headers = {"HX-Retarget": "#toast", "HX-Reswap": "innerHTML"}
    return render(
        request,
        "errors/error.html",
        error_context(status_code, status_code),
        status_code=status_code,
        headers=headers,
    )


def _refusal_page(request: Request, error: DomainError) -> Response:
    context = error_context(error.status_code, error.status_code)
    context["error_title"] = i18n.gettext(REFUSAL_TITLES.get(error.status_code, GENERIC_ERROR[0]))
    context["error_lines"] = [error.message] if error.message else context["error_lines"]
    headers = {}
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true":
        headers = {"HX-Retarget": "#toast", "HX-Reswap": "innerHTML"}
    return render(
        request, "errors/error.html", context, status_code=error.status_code, headers=headers
    )


def redirect(request: Request, location: str) -> Response:
    """303 for browsers; htmx (targeted requests) follows HX-Redirect instead."""
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true":
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in {301, 302, 303, 307, 308} and exc.headers:
            return redirect(request, exc.headers["Location"])
        response = _error_page(request, exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DomainError)
    async def refusal(request: Request, exc: DomainError) -> Response:
        # The session dependency has rolled the request's transaction back already.
        return _refusal_page(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, _exc: RequestValidationError) -> Response:
        return _error_page(request, 400)

    @app.exception_handler(InvalidToken)
    async def undecryptable(request: Request, _exc: InvalidToken) -> Response:
        # Data at rest that no configured key decrypts: the keys are not the data's (most
        # likely a backup restored without its key list, see docs/operations.md). Nobody's
        # fault on the page, and retrying will not help until the operator puts the keys back.
        logger.error(
            "data at rest does not decrypt with PARIS_AVENIR_ENCRYPTION_KEYS on %s %s: "
            "restored without its keys? `paris-avenir check-data` lists what is unreadable",
            request.method,
            route_template(request.scope),
        )
        return _error_page(request, 503)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # The message may contain personal data, the path a token: log the type and the
        # route template (logs.PrivateFormatter withholds the traceback's message).
        route = route_template(request.scope)
        logger.error(
            "unhandled %s on %s %s",
            type(exc).__name__,
            request.method,
            route,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return _error_page(request, 500)


def _page_sender(environment: Environment, key: int | str, status_code: int) -> Any:
    """An error page sent straight from a middleware (before any route), in the reader's
    language."""

    async def send_page(scope: Scope, send: Send, *_reason: Any) -> None:
        i18n.set_locale(scope.get("locale", i18n.SOURCE_LOCALE))
        html = environment.get_template("errors/error.html").render(
            {
                "request": None,
                "csrf_token": "",
                "viewer_youth": None,
                "viewer_staff": None,
                # Without a token the switch would fail the same way: not on this page.
                "show_language_bar": False,
                **error_context(key, status_code),
            }
        )
        html = i18n.mark_untranslated(html)
        response = HTMLResponse(html, status_code=status_code)
        await response({"type": "http", **scope}, _no_body, send)

    return send_page


def csrf_failure_sender(environment: Environment) -> Any:
    """The 403 that asgi-csrf sends, as a page in the reader's language instead of its
    English sentence."""
    return _page_sender(environment, "csrf", 403)


def malformed_request_sender(environment: Environment) -> Any:
    """The 400 for a request the CSRF check cannot even read (a multipart body without a
    valid boundary, a truncated one): a page, never a 500."""
    return _page_sender(environment, 400, 400)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.disconnect"}
