"""Pure ASGI middleware: security headers, locale, CSRF.

Pure ASGI (not BaseHTTPMiddleware) so that streaming, context variables and the request
body replay that CSRF needs all keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from asgi_csrf import asgi_csrf
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paris_avenir.web import i18n

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
LOCALE_COOKIE = "langue"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
# Machine-to-machine endpoints authenticate by their own means (signatures), not cookies.
CSRF_EXEMPT_PREFIXES = ("/webhooks/",)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Permissions-Policy", "geolocation=(), microphone=(), camera=()")
                # Phones are shared: nothing dynamic stays in a cache; versioned static
                # assets set their own long cache.
                headers.setdefault("Cache-Control", "no-store")
                if self.hsts:
                    headers.setdefault(
                        "Strict-Transport-Security", "max-age=63072000; includeSubDomains"
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            cookies: SimpleCookie = SimpleCookie()
            try:
                cookies.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header must not break the page
                return None
            morsel = cookies.get(name)
            return morsel.value if morsel else None
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class LocaleMiddleware:
    """Sets the request's language from the explicit choice, then Accept-Language."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            locale = i18n.negotiate_locale(
                _cookie(scope, LOCALE_COOKIE), _header(scope, b"accept-language")
            )
            i18n.set_locale(locale)
            scope["locale"] = locale
        await self.app(scope, receive, send)


class _EveryPath:
    """asgi-csrf lets cookieless POSTs through unless their path is 'always protected'.

    Every state change must carry its token, sign-in forms included (login CSRF), so
    every path is.
    """

    def __contains__(self, _path: object) -> bool:
        return True


class CSRFMiddleware:
    """Double-submit token (asgi-csrf): a hidden `csrftoken` field or an X-CSRFToken header."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: str,
        secure_cookie: bool,
        on_failure: Callable[[Scope, Send, Any], Any],
    ) -> None:
        self.app = asgi_csrf(
            app,
            cookie_name=CSRF_COOKIE,
            http_header=CSRF_HEADER,
            signing_secret=secret,
            always_protect=_EveryPath(),
            skip_if_scope=lambda scope: scope["path"].startswith(CSRF_EXEMPT_PREFIXES),
            cookie_secure=secure_cookie,
            cookie_samesite="Lax",
            send_csrf_failed=on_failure,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
