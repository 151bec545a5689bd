"""Pure ASGI middleware: client address, access log, security headers, locale, CSRF.

Pure ASGI (not BaseHTTPMiddleware) so that streaming, context variables and the request
body replay that CSRF needs all keep working.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from http.cookies import SimpleCookie
from typing import Any

import asgi_csrf as asgi_csrf_module
from asgi_csrf import asgi_csrf
from python_multipart.multipart import FormParser, parse_options_header
from starlette.datastructures import MutableHeaders
from starlette.formparsers import MultiPartException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paris_avenir import logs
from paris_avenir.kit.crypto import keyed_hash, minimised_ip
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
CSRF_HEADER = "x-csrftoken"
# Machine-to-machine endpoints authenticate by their own means (signatures), not cookies.
CSRF_EXEMPT_PREFIXES = ("/webhooks/",)
# The one-click unsubscribe of outreach emails (RFC 8058): the mail provider POSTs it with no
# cookie; its signed token is the authority. This exact route only.
CSRF_EXEMPT_PATHS = re.compile(r"/desabonnement/[A-Za-z0-9_.-]+")


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_address(value: str) -> IPAddress | None:
    """An address of X-Forwarded-For (1.2.3.4, 1.2.3.4:5678, 2001:db8::1, [2001:db8::1]:443)."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    """The reverse proxies whose X-Forwarded-For is believed (Settings.trusted_proxies)."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client_address(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The address the nearest trusted proxy saw: when the TCP peer is a trusted proxy,
        the rightmost hop of X-Forwarded-For that is not itself one; otherwise the peer.
        A client-supplied header is never believed from anyone else."""
        if peer is None or not self.trusts(_parse_address(peer)):
            return peer
        hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _parse_address(hop)
            if address is None:
                # Not what a proxy writes: believe nothing further left.
                return peer
            if not self.trusts(address):
                return str(address)
        return peer


class ClientAddressMiddleware:
    """Sets scope["client"] to the client's real address, once, for everyone: the rate limits
    and the audit (through auth.dependencies.client_ip) and the access log. The server's own
    proxy-header handling stays off (paris_avenir.app.SERVER_OPTIONS): this is the only place
    that reads X-Forwarded-For."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[str]) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted:
            client = scope.get("client")
            peer = client[0] if client else None
            forwarded = [
                value.decode("latin-1")
                for key, value in scope.get("headers", [])
                if key == b"x-forwarded-for"
            ]
            address = self.trusted.client_address(peer, forwarded)
            if address is not None and address != peer:
                scope["client"] = (address, 0)
        await self.app(scope, receive, send)


access_logger = logging.getLogger("paris_avenir.access")
UNMATCHED_ROUTE = "<no route>"
# Where the matched route's template travels back to the outer layers: asgi-csrf hands the
# layers inside it a copy of the scope, so the router's scope["route"] is not seen outside.
ROUTE_KEY = "paris_avenir.route"


def route_template(scope: Scope) -> str:
    """The path as the application declares it (`/connexion/lien/{token}`): what the logs
    write instead of the path itself, which may carry a token."""
    holder = scope.get(ROUTE_KEY)
    return str(holder[0]) if holder else UNMATCHED_ROUTE


class RouteTemplateMiddleware:
    """Innermost: once the router has chosen a route, hands its template outwards."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            path = getattr(scope.get("route"), "path", None)
            holder = scope.get(ROUTE_KEY)
            if path is not None and holder is not None and not holder:
                holder.append(path)


def _client_network(scope: Scope) -> str:
    """The client's network, not its address, minimised as the audit log does."""
    client = scope.get("client")
    return (minimised_ip(client[0]) if client else None) or "-"


# What a log line or a metric's label says of the method: any other token a client sends
# (the HTTP grammar allows letters and digits, so a phone number) is "OTHER".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID_HEADER = b"x-request-id"
# Called once per request with its method, route template, status and duration in seconds
# (the latency histogram of /metrics).
RequestObserver = Callable[[str, str, int, float], None]


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", "-"))
    return method if method in KNOWN_METHODS else "OTHER"


class AccessLogMiddleware:
    """One line per request: client network, method, route template, status, duration, and
    (in JSON lines, and as the response's X-Request-ID) a request id of our own, so that a
    person's report can be matched to its line. Never the raw path nor the query string
    (tokens, searched names)."""

    def __init__(self, app: ASGIApp, *, observe: RequestObserver | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        scope.setdefault(ROUTE_KEY, [])
        identifier = secrets.token_hex(8)
        reset = logs.request_id.set(identifier)

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).setdefault(REQUEST_ID_HEADER.decode(), identifier)
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            seconds = time.perf_counter() - started
            method, route, network = (
                method_label(scope),
                route_template(scope),
                _client_network(scope),
            )
            access_logger.info(
                '%s "%s %s" %d %.0fms',
                network,
                method,
                route,
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "client_network": network,
                },
            )
            logs.request_id.reset(reset)
            if self.observe is not None:
                self.observe(method, route, status, seconds)


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


class InFlightLimitMiddleware:
    """At most `limit` requests are handled at once; the others wait, in arrival order,
    before anything runs for them.

    Why: a signed-in request holds a pooled database connection across its hops between
    threads. With more requests in flight than connections, the requests that hold one wait
    for threads, and the threads wait for connections: the server stops answering (at 56
    connections, nothing in 15 s; then "QueuePool limit" errors). Kept below the pool,
    every admitted request can finish. The slot is freed once the response has left: work
    after it (queueing a sign-in code) takes a connection only inside its thread, briefly,
    and a send waiting on the provider holds none. Static files take no slot.
    """

    def __init__(self, app: ASGIApp, *, limit: int, exempt_prefix: str = "/static/") -> None:
        self.app = app
        self.limit = max(1, limit)
        self.exempt_prefix = exempt_prefix
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: an app served by a new loop (a test, a restarted server) does
        # not inherit waiters bound to the old one.
        loop = asyncio.get_running_loop()
        if self._slots is None or loop is not self._loop:
            self._loop, self._slots = loop, asyncio.Semaphore(self.limit)
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefix):
            await self.app(scope, receive, send)
            return
        slots = self._semaphore()
        await slots.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def releasing_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()

        try:
            await self.app(scope, receive, releasing_send)
        finally:
            release()


# Far above the 10 MB a document may weigh (so its own page can explain the limit), low
# enough that nobody fills the disk with one request.
MAX_REQUEST_BYTES = 40 * 1024 * 1024


class BodySizeLimitMiddleware:
    """Refuses (413) a request whose declared or actual body exceeds the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except TooLarge:
            await _too_large(send)


class TooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    body = i18n.gettext("Ce que vous envoyez est trop lourd.").encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LocaleMiddleware:
    """Sets the request's language from the explicit choice, then Accept-Language."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            locale = i18n.negotiate_locale(
                _cookie(scope, LOCALE_COOKIE), _header(scope, b"accept-language")
            )
            if i18n.is_back_office(scope.get("path", "")):
                locale = i18n.SOURCE_LOCALE
            i18n.set_locale(locale)
            scope["locale"] = locale
        await self.app(scope, receive, send)


class _MultipartParserForAsgiCsrf(FormParser):
    """asgi-csrf 0.11 builds python-multipart's parser with a `FileClass` argument that
    python-multipart removed in 0.0.25, and python-multipart before 0.0.30 has known
    denial-of-service flaws. This adapter keeps the current, fixed parser and lets asgi-csrf
    read the `csrftoken` field of upload forms as it was designed to; the token check itself
    stays asgi-csrf's."""

    def __init__(
        self, content_type: str, on_field: Any, _on_file: Any, boundary: Any = None, **_legacy: Any
    ) -> None:
        super().__init__(content_type, on_field, lambda _file: None, boundary=boundary)


asgi_csrf_module.FormParser = _MultipartParserForAsgiCsrf


class _EveryPath:
    """asgi-csrf lets cookieless POSTs through unless their path is 'always protected'.

    Every state change must carry its token, sign-in forms included (login CSRF), so
    every path is.
    """

    def __contains__(self, _path: object) -> bool:
        return True


# RFC 2046: 1 to 70 characters, a space allowed but not last.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_malformed_logger = logging.getLogger("paris_avenir.web.malformed")


_NOT_MULTIPART = b""
# How much may follow the closing delimiter (RFC 2046's "epilogue"; browsers send none).
_EPILOGUE_BYTES = 256


def _normalise_multipart(scope: Scope) -> bytes | None:
    """A multipart/form-data Content-Type rewritten as `multipart/form-data; boundary=B`, the
    one form asgi-csrf reads (it splits on "; boundary=", so `;boundary=B`, a quoted boundary
    or a parameter after it broke it with a 500). Returns the boundary (b"" when the body is
    not multipart), or None when the boundary is missing or invalid: the request is
    malformed."""
    headers = scope.get("headers", [])
    for index, (key, value) in enumerate(headers):
        if key != b"content-type":
            continue
        kind, options = parse_options_header(value)
        if kind != b"multipart/form-data":
            return _NOT_MULTIPART
        boundary = options.get(b"boundary", b"")
        if not _BOUNDARY.fullmatch(boundary.decode("latin-1")):
            return None
        rewritten = list(headers)
        rewritten[index] = (key, b"multipart/form-data; boundary=" + boundary)
        scope["headers"] = rewritten
        return bytes(boundary)
    return _NOT_MULTIPART


def _closing_delimiter_required(receive: Receive, boundary: bytes) -> Receive:
    """A multipart body must end with its closing delimiter: python-multipart takes a body
    cut short for a complete one (the parts so far, the last one silently dropped). The body
    is not buffered, only its last bytes are kept to check."""
    closing = b"--" + boundary + b"--"
    keep = len(closing) + _EPILOGUE_BYTES
    tail = b""

    async def checked() -> Message:
        nonlocal tail
        message = await receive()
        if message["type"] == "http.request":
            tail = (tail + message.get("body", b""))[-keep:]
            if not message.get("more_body", False) and closing not in tail:
                # Starlette and FastAPI answer this exception with a 400.
                raise MultiPartException("multipart body without its closing delimiter")
        return message

    return checked


class CSRFMiddleware:
    """Double-submit token (asgi-csrf): a hidden `csrftoken` field or an X-CSRFToken header,
    equal to the token of the `__Host-csrftoken` cookie (`csrftoken` in dev), whose signature
    is bound to the session: asgi-csrf signs with itsdangerous under a namespace derived from
    the session cookie (an HMAC of it, never the cookie itself), so a token issued to another
    session — or before signing in — does not verify, and a cookie planted by someone else is
    useless without the victim's session.

    A request asgi-csrf cannot read (a multipart boundary missing or invalid, a body that does
    not parse) gets a 400 page instead of a 500."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: str,
        secure_cookie: bool,
        cookie_name: str,
        session_cookie: str,
        on_failure: Callable[[Scope, Send, Any], Any],
        on_malformed: Callable[[Scope, Send], Any],
    ) -> None:
        self.app = app
        self.secret = secret
        self.session_cookie = session_cookie
        self.on_malformed = on_malformed
        self.options: dict[str, Any] = {
            "cookie_name": cookie_name,
            "http_header": CSRF_HEADER,
            "signing_secret": secret,
            "always_protect": _EveryPath(),
            "skip_if_scope": lambda scope: (
                scope["path"].startswith(CSRF_EXEMPT_PREFIXES)
                or CSRF_EXEMPT_PATHS.fullmatch(scope["path"]) is not None
            ),
            # __Host-: Secure, Path=/ and no Domain (asgi-csrf sets none).
            "cookie_path": "/",
            "cookie_secure": secure_cookie,
            "cookie_samesite": "Lax",
            "send_csrf_failed": on_failure,
        }

    def _namespace(self, scope: Scope) -> str:
        session = _cookie(scope, self.session_cookie) or ""
        return "csrftoken." + keyed_hash(self.secret, session, purpose="csrf-session")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in {"GET", "HEAD", "OPTIONS", "TRACE"}:
            boundary = _normalise_multipart(scope)
            if boundary is None:
                _malformed_logger.info("refused: multipart boundary missing or invalid")
                await self.on_malformed(scope, send)
                return
            if boundary:
                receive = _closing_delimiter_required(receive, boundary)
        reached_app = False

        async def application(inner: Scope, inner_receive: Receive, inner_send: Send) -> None:
            nonlocal reached_app
            reached_app = True
            await self.app(inner, inner_receive, inner_send)

        protected = asgi_csrf(application, signing_namespace=self._namespace(scope), **self.options)
        try:
            await protected(scope, receive, send)
        except Exception as error:
            if reached_app:
                raise
            # asgi-csrf could not read the body (truncated multipart, bytes that are not
            # UTF-8…): the request is malformed, not the server broken.
            _malformed_logger.info("refused: unreadable body (%s)", type(error).__name__)
            await self.on_malformed(scope, send)
