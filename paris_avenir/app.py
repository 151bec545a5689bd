"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.gzip import GZipMiddleware

from paris_avenir.aid_requests import routes as aid_request_routes
from paris_avenir.aid_requests import staff_routes as instruction_routes
from paris_avenir.appointments import routes as appointment_routes
from paris_avenir.appointments import staff_routes as appointment_staff_routes
from paris_avenir.auth import routes as auth_routes
from paris_avenir.auth import sessions, staff_account_routes, staff_sign_in_routes
from paris_avenir.auth.oidc import OidcClient, ProviderSettings
from paris_avenir.backoffice import (
    admin_routes,
    counter_routes,
    import_routes,
    task_routes,
    team_routes,
)
from paris_avenir.backoffice import labels as staff_labels
from paris_avenir.backoffice import routes as staff_routes
from paris_avenir.config import Settings, get_settings
from paris_avenir.db import connection_capacity, create_database_engine, make_session_factory
from paris_avenir.documents import routes as document_routes
from paris_avenir.documents.clamav import scanner_from_settings
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.kit.crypto import build_cipher, configure_at_rest
from paris_avenir.kit.forms import french_number
from paris_avenir.messaging import routes as messaging_routes
from paris_avenir.messaging import webhooks as messaging_webhooks
from paris_avenir.messaging.channels import Channels, build_channels
from paris_avenir.messaging.outbox import WORKER_THREADS, OutboxWorker
from paris_avenir.monitoring import routes as monitoring_routes
from paris_avenir.monitoring.metrics import Metrics
from paris_avenir.outreach import engine as outreach_engine
from paris_avenir.outreach import routes as outreach_routes
from paris_avenir.stats import routes as stats_routes
from paris_avenir.web import language as language_routes
from paris_avenir.web import routes as web_routes
from paris_avenir.web.errors import (
    csrf_failure_sender,
    install_error_handlers,
    malformed_request_sender,
)
from paris_avenir.web.middleware import (
    MAX_REQUEST_BYTES,
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    ClientAddressMiddleware,
    CSRFMiddleware,
    InFlightLimitMiddleware,
    LocaleMiddleware,
    RouteTemplateMiddleware,
    SecurityHeadersMiddleware,
)
from paris_avenir.web.static_assets import StaticAssets
from paris_avenir.web.templating import build_environment
from paris_avenir.youths import activity
from paris_avenir.youths import routes as youth_routes

# How uvicorn serves the application, in `serve` and in the tests' servers alike. uvicorn's
# proxy headers stay off: by default they believe X-Forwarded-For from 127.0.0.1, which let
# anyone on the host pick their address; ClientAddressMiddleware reads it, from the proxies
# of PARIS_AVENIR_TRUSTED_PROXIES only. uvicorn's access log (raw path and query string) is
# off too: AccessLogMiddleware writes the route template. log_config=None leaves the
# logging to paris_avenir.logs.
SERVER_OPTIONS: dict[str, Any] = {
    "proxy_headers": False,
    "forwarded_allow_ips": "",
    "access_log": False,
    "log_config": None,
}


def _private_key(path: str) -> str:
    return Path(path).read_text() if path else ""


def build_oidc_clients(settings: Settings) -> dict[str, OidcClient]:
    """FranceConnect (v2) for youths, the City's ProConnect-compatible sign-in for staff."""
    base = settings.base_url.rstrip("/")
    return {
        "franceconnect": OidcClient(
            ProviderSettings(
                name="franceconnect",
                issuer=settings.franceconnect_issuer,
                client_id=settings.franceconnect_client_id,
                client_secret=settings.franceconnect_client_secret,
                redirect_uri=base + "/connexion/franceconnect/retour",
                post_logout_redirect_uri=base + "/connexion/franceconnect/deconnecte",
                scope="openid given_name family_name birthdate",
                claims=("given_name", "family_name", "birthdate"),
                token_endpoint_auth_method=settings.franceconnect_token_auth_method,
                private_key=_private_key(settings.franceconnect_private_key_file),
                extra_authorize_params={"acr_values": "eidas1"},
            )
        ),
        "staff": OidcClient(
            ProviderSettings(
                name="staff",
                issuer=settings.oidc_staff_issuer,
                client_id=settings.oidc_staff_client_id,
                client_secret=settings.oidc_staff_client_secret,
                redirect_uri=base + "/pro/connexion/oidc/retour",
                post_logout_redirect_uri=base + "/pro/connexion/oidc/deconnecte",
                scope="openid email given_name usual_name",
                claims=("email", "email_verified", "given_name", "usual_name"),
                token_endpoint_auth_method=settings.oidc_staff_token_auth_method,
                private_key=_private_key(settings.oidc_staff_private_key_file),
            )
        ),
    }


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    session_factory: sessionmaker[Session] | None = None,
    channels: Channels | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    # youths.activity cannot call the domains above it: they subscribe (idempotent). The
    # watch credits its steps from a youth's activity; a number reported wrong ends the
    # sessions a code opened.
    activity.on_activity(outreach_engine.credit_activity)
    activity.on_phone_reported_wrong(sessions.end_code_sessions)
    owns_engine = engine is None
    engine = engine or create_database_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        _app.state.outbox_worker.shutdown()
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="Paris avenir",
        lifespan=lifespan,
        docs_url=None if settings.is_prod else "/docs",
        redoc_url=None,
        openapi_url=None if settings.is_prod else "/openapi.json",
    )
    static_assets = StaticAssets()
    templates = build_environment(static_assets)
    # Staff pages show every code through one function (backoffice/labels.py).
    templates.globals["label"] = staff_labels.label
    templates.filters["nombre"] = french_number
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory or make_session_factory(engine)
    app.state.templates = templates
    # The header's "Mon espace" on pages without a sign-in dependency.
    app.state.signed_in_as = sessions.signed_in_as
    app.state.cipher = build_cipher(settings)
    # Encrypted columns use the same keys as documents.
    configure_at_rest(settings, engine)
    app.state.document_store = DocumentStore(
        settings.upload_dir, app.state.cipher, scanner=scanner_from_settings(settings)
    )
    app.state.channels = channels or build_channels(settings)
    # Sends leave on the worker's own threads, never on the request thread pool.
    app.state.outbox_worker = OutboxWorker(app.state.session_factory, app.state.channels)
    app.state.oidc = build_oidc_clients(settings)
    app.state.metrics = Metrics(app.state.session_factory, settings)

    install_error_handlers(app)
    app.include_router(static_assets.router())
    app.include_router(web_routes.router)
    app.include_router(language_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(staff_sign_in_routes.router)
    app.include_router(staff_account_routes.router)
    app.include_router(youth_routes.router)
    app.include_router(appointment_routes.router)
    app.include_router(appointment_routes.answer_router)
    app.include_router(appointment_staff_routes.router)
    app.include_router(aid_request_routes.router)
    app.include_router(aid_request_routes.verification_router)
    app.include_router(document_routes.router)
    app.include_router(messaging_routes.router)
    app.include_router(outreach_routes.router)
    app.include_router(staff_routes.router)
    app.include_router(instruction_routes.router)
    app.include_router(counter_routes.router)
    app.include_router(import_routes.router)
    app.include_router(task_routes.router)
    app.include_router(team_routes.router)
    app.include_router(stats_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(messaging_webhooks.router)
    app.include_router(monitoring_routes.router)
    if settings.env == "dev":
        # /dev/messages: every SMS and email of a development machine (never in prod).
        from paris_avenir.devtools import routes as devtools_routes

        app.include_router(devtools_routes.router)

    # Added innermost first: the security headers wrap everything, even CSRF refusals.
    app.add_middleware(RouteTemplateMiddleware)
    app.add_middleware(
        CSRFMiddleware,
        secret=settings.secret_key,
        secure_cookie=settings.is_prod,
        cookie_name=settings.csrf_cookie_name,
        session_cookie=settings.session_cookie_name,
        on_failure=csrf_failure_sender(templates),
        on_malformed=malformed_request_sender(templates),
    )
    app.add_middleware(LocaleMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_REQUEST_BYTES)
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_prod)
    app.add_middleware(InFlightLimitMiddleware, limit=requests_in_flight(settings, engine))
    # The access log and the latency histogram count the wait for an in-flight slot too.
    app.add_middleware(AccessLogMiddleware, observe=app.state.metrics.requests.observe)
    # Outermost: everything below, the access log included, sees the client's real address.
    app.add_middleware(ClientAddressMiddleware, trusted_proxies=settings.trusted_proxy_list)
    return app


# Connections taken outside requests: the outbox worker's sends, the scheduler's cycle (in
# the same process under `serve`) and one for a request's work after its response. (The
# dispatcher's sending threads take none: it claims and records on its own thread.)
CONNECTIONS_OUTSIDE_REQUESTS = WORKER_THREADS + 2
# With no fixed pool (SQLite in memory, NullPool): as many as the thread pool can carry.
UNBOUNDED_POOL_REQUESTS = 32


def requests_in_flight(settings: Settings, engine: Engine) -> int:
    """The bound of InFlightLimitMiddleware: below the connection pool, so that every
    request it lets in can get a connection."""
    if settings.max_requests_in_flight > 0:
        return settings.max_requests_in_flight
    capacity = connection_capacity(engine)
    if capacity is None:
        return UNBOUNDED_POOL_REQUESTS
    return max(1, capacity - CONNECTIONS_OUTSIDE_REQUESTS)
