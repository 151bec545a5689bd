"""Real servers on loopback for the tests: SMTP (aiosmtpd), the SMS providers' HTTP APIs
(Brevo, Primotexto), and an OpenID Connect provider. Each speaks the real protocol over a socket."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import jsonschema  # type: ignore[import-untyped]
from aiosmtpd.controller import Controller
from joserfc import jwt
from joserfc.jwk import RSAKey

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.orm import Session, sessionmaker

    from paris_avenir.config import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- SMTP -----------------------------------------------------------------------------


class _CollectingHandler:
    def __init__(self, inbox: list[EmailMessage]) -> None:
        self.inbox = inbox

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.inbox.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on loopback that keeps every message it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox: list[EmailMessage] = []
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(
            _CollectingHandler(self.inbox), hostname="127.0.0.1", port=self.port
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def text_of(self, message: EmailMessage) -> str:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None, "no text part"
        return str(body.get_content())


# --- A small HTTP server base ---------------------------------------------------------


class _BackloggedServer(ThreadingHTTPServer):
    # A real provider accepts many connections at once; the standard library's backlog of
    # 5 drops a dispatcher's simultaneous connects (retried by TCP a second later).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout) before the answer: nothing to report.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Server:
    def __init__(self) -> None:
        self.port = free_port()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                status, headers, content = server.handle(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {key.lower(): value for key, value in self.headers.items()},
                    body,
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *_args: Any) -> None:
                pass

        self._httpd = _BackloggedServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


# --- Brevo's transactional SMS API ----------------------------------------------------


@dataclass
class SmsApiCall:
    headers: dict[str, str]
    payload: dict[str, Any]
    at: float


BREVO_DEFINITION_PATH = Path(__file__).parent / "brevo" / "transactional-sms.json"


@functools.cache
def _stored_definition(path: Path) -> dict[str, Any]:
    """A provider's API definition as stored under tests/ (its README gives the source)."""
    definition: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return definition


def _schema_in(definition: dict[str, Any], name: str) -> dict[str, Any]:
    """One of a definition's schemas, with its references resolvable."""
    return {"$ref": f"#/components/schemas/{name}", "components": definition["components"]}


def brevo_definition() -> dict[str, Any]:
    """Brevo's published API definition, the parts we use (tests/brevo/README.md)."""
    return _stored_definition(BREVO_DEFINITION_PATH)


def brevo_schema(name: str) -> dict[str, Any]:
    return _schema_in(brevo_definition(), name)


def brevo_example(path: str, method: str, status: str) -> Any:
    operation = brevo_definition()["paths"][path][method]
    return copy.deepcopy(operation["responses"][status]["content"]["application/json"]["example"])


def brevo_error(name: str) -> dict[str, Any]:
    """A 400 body from the definition's examples: invalidRecipient, invalidSender…"""
    content = brevo_definition()["components"]["responses"]["badRequest"]["content"]
    value: dict[str, Any] = copy.deepcopy(content["application/json"]["examples"][name]["value"])
    return value


BREVO_WEBHOOK_PATH = Path(__file__).parent / "brevo" / "sms-webhook.json"


@functools.cache
def brevo_webhook_schema() -> dict[str, Any]:
    """The body of Brevo's SMS webhook calls, from its documentation (tests/brevo/README.md)."""
    schema: dict[str, Any] = json.loads(BREVO_WEBHOOK_PATH.read_text(encoding="utf-8"))
    return schema


def brevo_reply_event(
    *, message_id: int, to: str, text: str, ts_event: int, webhook_id: int = 26570
) -> dict[str, Any]:
    """A reply as Brevo's webhook posts it: only the fields its documentation names, checked
    against the stored schema (an unknown field fails the test that builds it)."""
    event: dict[str, Any] = {
        "id": webhook_id,
        "to": to.lstrip("+"),
        "sms_count": 1,
        "credits_used": 0,
        "messageId": message_id,
        "remaining_credit": 1000.0,
        "msg_status": "reply",
        "date": datetime.fromtimestamp(ts_event, tz=UTC)
        .astimezone(ZoneInfo("Europe/Paris"))
        .strftime("%Y-%m-%d %H:%M:%S"),
        "type": "transactional",
        "reference": f"ref{message_id}",
        "ts_event": ts_event,
        "reply": text,
    }
    jsonschema.Draft202012Validator(brevo_webhook_schema()).validate(event)
    return event


class BrevoSmsApi(_Server):
    """Brevo's transactional SMS API as its definition (tests/brevo/) describes it:
    POST /v3/transactionalSMS/send (and the deprecated /sms) check the request against the
    definition's schema and answer 400 `missing_parameter`/`invalid_parameter` as Brevo does,
    else 201 with the definition's example (a fresh messageId); GET
    /v3/transactionalSMS/statistics/events answers events shaped like its example.
    `next_statuses` plays failures (500, or 400 with `next_errors`' example names), and
    `event_kind` chooses the event a sent SMS leaves in the lookup (sent, rejected…)."""

    API_KEY = "test-brevo-key"
    SEND_PATHS = {"/v3/transactionalSMS/send", "/v3/transactionalSMS/sms"}

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[SmsApiCall] = []
        self.next_statuses: list[int] = []
        self.next_errors: list[str] = []
        self.event_kind = "sent"
        self.sent: list[dict[str, Any]] = []
        self.response_delay = 0.0
        # Per call, in order (then response_delay): a provider slow for some messages only.
        self.next_delays: list[float] = []
        self._next_id = 1000
        self._lock = threading.Lock()  # the handler runs on one thread per connection
        self._validator = jsonschema.Draft202012Validator(brevo_schema("sendTransacSms"))

    def _events(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        """GET /v3/transactionalSMS/statistics/events?tags=…&phoneNumber=…"""
        tags = set(query.get("tags", [""])[0].split(","))
        phone = query.get("phoneNumber", [None])[0]
        template = brevo_example("/transactionalSMS/statistics/events", "get", "200")["events"][0]
        events = [
            template
            | {key: value for key, value in event.items() if key != "tags"}
            | {"tag": ",".join(event["tags"])}
            for event in self.sent
            if tags & set(event["tags"]) and phone in (None, event["phoneNumber"])
        ]
        return _json(200, {"events": events})

    @property
    def url(self) -> str:
        return self.base_url + "/v3/transactionalSMS/send"

    def _bad_request(self, payload: Any) -> dict[str, Any] | None:
        errors = sorted(self._validator.iter_errors(payload), key=lambda error: error.path)
        if not errors:
            return None
        error = errors[0]
        if error.validator == "required":
            return {"code": "missing_parameter", "message": error.message}
        return {"code": "invalid_parameter", "message": error.message}

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("api-key") != self.API_KEY:
            return _json(401, {"code": "unauthorized", "message": "Key not found"})
        if method == "GET" and path == "/v3/transactionalSMS/statistics/events":
            return self._events(query)
        if method != "POST" or path not in self.SEND_PATHS:
            return _json(404, {"code": "document_not_found", "message": "Not found"})
        payload = json.loads(body)
        self.calls.append(SmsApiCall(headers, payload, time.monotonic()))
        refused = self._bad_request(payload)
        if refused is not None:
            return _json(400, refused)
        with self._lock:
            status = self.next_statuses.pop(0) if self.next_statuses else 201
        if status == 201:
            with self._lock:
                self._next_id += 1
                message_id = self._next_id
                delay = self.next_delays.pop(0) if self.next_delays else self.response_delay
            tags = payload.get("tag")
            self.sent.append(
                {
                    "phoneNumber": payload["recipient"],
                    "messageId": str(message_id),
                    "event": self.event_kind,
                    "tags": tags if isinstance(tags, list) else [tags],
                }
            )
            if delay:
                # The SMS has left; the answer is slow (a crash may happen meanwhile).
                time.sleep(delay)
            operation = "/transactionalSMS" + path.rsplit("/transactionalSMS", 1)[1]
            answer = brevo_example(operation, "post", "201")
            answer["messageId"] = message_id
            return _json(201, answer)
        if status == 400:
            name = self.next_errors.pop(0) if self.next_errors else "invalidRecipient"
            return _json(400, brevo_error(name))
        return _json(status, {"code": "internal_error", "message": "Internal error"})


# --- Primotexto's notification SMS API ------------------------------------------------


PRIMOTEXTO_DEFINITION_PATH = Path(__file__).parent / "primotexto" / "notification-api.json"


def primotexto_definition() -> dict[str, Any]:
    """Primotexto's API as its pages describe it, the parts we use (tests/primotexto/)."""
    return _stored_definition(PRIMOTEXTO_DEFINITION_PATH)


def primotexto_schema(name: str) -> dict[str, Any]:
    return _schema_in(primotexto_definition(), name)


def primotexto_example(path: str, method: str) -> Any:
    operation = primotexto_definition()["paths"][path][method]
    return copy.deepcopy(operation["responses"]["200"]["content"]["application/json"]["example"])


class PrimotextoSmsApi(_Server):
    """Primotexto's API as tests/primotexto/ describes it: POST /v2/notification/messages/send
    checks the key (X-Primotexto-ApiKey, else code 72) and the body against the stored schema
    (a bad number: code 11, bad characters: 31, a bad sender: 20, else 73), and answers 200
    with a fresh snapshotId; GET /v2/messages/stats?category=… counts what left under that
    category. Fault injection: `next_statuses` (500, 503… or 400 with `next_codes`),
    `response_delay`/`next_delays` (the SMS has left, the answer is slow), `hang` (no
    answer until the client gives up), `lookup_status` (the stats answer an error)."""

    API_KEY = "test-primotexto-key"
    SEND_PATH = "/v2/notification/messages/send"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[SmsApiCall] = []
        self.sent: list[dict[str, Any]] = []
        self.next_statuses: list[int] = []
        self.next_codes: list[int] = []
        self.response_delay = 0.0
        self.next_delays: list[float] = []
        self.lookup_status = 200
        self._next_id = 386000
        self._lock = threading.Lock()
        self._validator = jsonschema.Draft202012Validator(primotexto_schema("notificationMessage"))

    @property
    def url(self) -> str:
        return self.base_url + "/v2"

    def _refusal(self, payload: Any) -> int | None:
        errors = list(self._validator.iter_errors(payload))
        if not errors:
            return None
        fields = {str(error.path[0]) if error.path else "" for error in errors}
        if "number" in fields:
            return 11
        if "message" in fields:
            return 31
        if "sender" in fields:
            return 20
        return 73

    def _stats(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if self.lookup_status != 200:
            return _json(self.lookup_status, {"code": 1000})
        category = query.get("category", [""])[0]
        if not category:
            return _json(400, {"code": 45})
        left = sum(1 for sent in self.sent if sent["category"] == category)
        stats = dict.fromkeys(primotexto_example("/messages/stats", "get"), 0)
        stats |= {"sent": left, "submitted": left, "delivered": left}
        return _json(200, stats)

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("x-primotexto-apikey") != self.API_KEY:
            return _json(401, {"code": 72})
        if method == "GET" and path == "/v2/messages/stats":
            return self._stats(query)
        if method != "POST" or path != self.SEND_PATH:
            return _json(404, {"code": 1000})
        try:
            payload = json.loads(body)
        except ValueError:
            return _json(400, {"code": 73})
        self.calls.append(SmsApiCall(headers, payload, time.monotonic()))
        refused = self._refusal(payload)
        if refused is not None:
            return _json(400, {"code": refused})
        with self._lock:
            status = self.next_statuses.pop(0) if self.next_statuses else 200
        if status == 400:
            return _json(400, {"code": self.next_codes.pop(0) if self.next_codes else 11})
        if status != 200:
            return _json(status, {"code": 1000})
        with self._lock:
            self._next_id += 1
            snapshot = str(self._next_id)
            delay = self.next_delays.pop(0) if self.next_delays else self.response_delay
            self.sent.append(
                {
                    "number": payload["number"],
                    "message": payload["message"],
                    "category": payload.get("category"),
                    "snapshotId": snapshot,
                }
            )
        if delay:
            time.sleep(delay)  # the SMS has left; the answer is slow
        answer = primotexto_example("/notification/messages/send", "post")
        answer["snapshotId"] = snapshot
        return _json(200, answer)


# --- OpenID Connect provider ----------------------------------------------------------


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    subject: str
    claims: dict[str, Any]
    used: bool = False


@functools.cache
def _signing_keys() -> tuple[RSAKey, RSAKey]:
    """The provider's key and an impostor's with the same kid (generated once: RSA is slow)."""
    return (
        RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"}),
        RSAKey.generate_key(2048, parameters={"kid": "test-key"}),
    )


@dataclass
class OidcProvider(_Server):
    """Authorization-code flow with PKCE (S256), RS256 ID tokens, one-time codes.

    `next_subject` / `next_claims` choose who signs in; `tamper_nonce` signs the next ID
    token with a different nonce, `sign_with_other_key` with a key not in the JWKS.
    """

    client_id: str = "paris-avenir-test"
    client_secret: str = "test-client-secret"
    next_subject: str = "sub-0001"
    next_claims: dict[str, Any] = field(default_factory=dict)
    tamper_nonce: bool = False
    sign_with_other_key: bool = False

    def __post_init__(self) -> None:
        _Server.__init__(self)
        self.key, self.other_key = _signing_keys()
        self.grants: dict[str, _Grant] = {}
        self.token_requests = 0

    @property
    def issuer(self) -> str:
        return self.base_url

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        if path == "/.well-known/openid-configuration":
            return _json(
                200,
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": self.issuer + "/authorize",
                    "token_endpoint": self.issuer + "/token",
                    "jwks_uri": self.issuer + "/jwks",
                    "response_types_supported": ["code"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                },
            )
        if path == "/jwks":
            return _json(200, {"keys": [self.key.as_dict(private=False)]})
        if path == "/authorize":
            return self._authorize({key: values[0] for key, values in query.items()})
        if path == "/token" and method == "POST":
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            return self._token(form)
        return _json(404, {"error": "not_found"})

    def _authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if (
            params.get("client_id") != self.client_id
            or params.get("response_type") != "code"
            or params.get("code_challenge_method") != "S256"
            or not params.get("code_challenge")
        ):
            return _json(400, {"error": "invalid_request"})
        code = secrets.token_urlsafe(16)
        self.grants[code] = _Grant(
            client_id=self.client_id,
            redirect_uri=params["redirect_uri"],
            challenge=params["code_challenge"],
            nonce=params.get("nonce", ""),
            subject=self.next_subject,
            claims=dict(self.next_claims),
        )
        location = (
            params["redirect_uri"]
            + "?"
            + urlencode({"code": code, "state": params.get("state", "")})
        )
        return 302, {"Location": location}, b""

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.token_requests += 1
        grant = self.grants.get(form.get("code", ""))
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return _json(401, {"error": "invalid_client"})
        if grant is None or grant.used or form.get("redirect_uri") != grant.redirect_uri:
            return _json(400, {"error": "invalid_grant"})
        grant.used = True  # a code works once: a replay gets invalid_grant
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if challenge != grant.challenge:
            return _json(400, {"error": "invalid_grant", "error_description": "PKCE"})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant.subject,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": "not-the-nonce" if self.tamper_nonce else grant.nonce,
            **grant.claims,
        }
        key = self.other_key if self.sign_with_other_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)
        return _json(
            200,
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )


class PlatformServer:
    """The platform itself, served by uvicorn on loopback in a thread: what a browser or 40
    parallel clients talk to."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import uvicorn

        from paris_avenir.app import SERVER_OPTIONS

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Served as `paris-avenir serve` serves it (proxy headers, access log, logging, INFO:
        # tests/log_privacy.py reads every line uvicorn writes).
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="info", **SERVER_OPTIONS
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the platform's test server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def running(server: Any) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RacePlatform:
    """The platform on loopback over a database of its own, for 30–40 requests at once."""

    url: str
    settings: Settings
    factory: sessionmaker[Session]
    app: FastAPI


@contextmanager
def race_platform(
    url: str,
    directory: Path,
    *,
    pool: dict[str, int] | None = None,
    **settings: Any,
) -> Iterator[RacePlatform]:
    """A real server on `url`'s database (a PostgreSQL schema of its own, or a SQLite file),
    migrated, its pool large enough that parallel requests wait on the database, not on it
    (`pool={}`: SQLAlchemy's default pool, as `serve` has it)."""
    from paris_avenir.app import create_app
    from paris_avenir.config import Settings
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.migrate import upgrade_to_head

    engine = create_database_engine(
        url, **({"pool_size": 20, "max_overflow": 30} if pool is None else pool)
    )
    upgrade_to_head(engine)
    config = Settings(
        **{
            "env": "dev",
            "secret_key": "race-test-secret-" + "x" * 32,
            "sms_file": directory / "sms.jsonl",
            "upload_dir": directory / "uploads",
            "smtp_url": "smtp://127.0.0.1:9",
            **settings,
        }
    )
    app = create_app(config, engine=engine)
    platform = PlatformServer(app)
    platform.start()
    try:
        yield RacePlatform(platform.url, config, make_session_factory(engine), app)
    finally:
        platform.stop()
        engine.dispose()
