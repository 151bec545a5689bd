"""Settings, read from the environment with the PARIS_AVENIR_ prefix.

In production (ENV=prod) the platform refuses to start with a missing or development
secret: a leaked development key would let anyone forge sessions and sign-in links.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-secret-key-never-use-in-production"  # noqa: S105
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_PROD_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """A setting makes it unsafe or impossible to start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARIS_AVENIR_", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'paris_avenir.sqlite3'}"
    secret_key: str = DEV_SECRET_KEY
    base_url: str = "http://127.0.0.1:8000"

    # Fernet keys (comma-separated, newest first) for data encrypted at rest; rotation =
    # prepend a new key. Empty in dev: derived from SECRET_KEY. Required in prod.
    encryption_keys: str = ""

    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "Paris avenir <ne-pas-repondre@paris-avenir.example.org>"
    # "http": Brevo; "primotexto": Primotexto alone; "failover": both, the primary first,
    # the other when it fails (channels/sms_failover.py, docs/sms.md "Second provider").
    sms_backend: Literal["file", "http", "primotexto", "failover"] = "file"
    sms_file: Path = PROJECT_ROOT / "var" / "sms.jsonl"
    # Brevo's transactional SMS API (see docs/sms.md for why this provider).
    sms_api_url: str = "https://api.brevo.com/v3/transactionalSMS/send"
    sms_api_key: str = ""
    sms_sender: str = "ParisAvenir"
    # Shared secret the provider presents (Authorization: Bearer …) on its webhooks.
    sms_webhook_token: str = ""
    # Primotexto's API (the provider rdv-insertion falls back to), base URL of /v2.
    primotexto_api_url: str = "https://api.primotexto.com/v2"
    primotexto_api_key: str = ""
    # Empty: the same sender name as Brevo's (3 to 11 letters or digits for Primotexto).
    primotexto_sender: str = ""
    # --- Failover between the two SMS providers (sms_backend "failover") ---
    sms_failover_primary: Literal["brevo", "primotexto"] = "brevo"
    # The active provider is left when at least this share of its sends over the window
    # failed or were slow (GOV.UK Notify: 15 % over 15 minutes), once it has at least
    # `min_sends` sends in the window (one failure of two is no trend).
    sms_failover_threshold_percent: float = Field(default=15.0, gt=0, le=100)
    sms_failover_window_seconds: int = Field(default=900, ge=1)
    # A send is slow when the provider took longer than this to accept it (our client gives
    # up at 5 s: a timeout is a failure).
    sms_failover_slow_seconds: float = Field(default=3.0, gt=0)
    sms_failover_min_sends: int = Field(default=20, ge=1)
    # On the secondary, the primary is probed after this long with a share of new
    # messages; back to the primary once its probes are healthy.
    sms_failover_probation_seconds: int = Field(default=900, ge=0)
    sms_failover_probe_percent: int = Field(default=10, ge=0, le=100)

    oidc_staff_issuer: str = ""
    oidc_staff_client_id: str = ""
    oidc_staff_client_secret: str = ""
    # Staff single sign-on counts as two factors only when the provider asserts it: an
    # `acr` among these, or an `amr` holding one of these (comma-separated; ProConnect's
    # two-factor levels and RFC 8176's "mfa" by default). Otherwise the platform asks for
    # the account's TOTP code after the return.
    oidc_staff_mfa_acr: str = (
        "eidas2,eidas3,https://proconnect.gouv.fr/assurance/self-asserted-2fa,"
        "https://proconnect.gouv.fr/assurance/consistency-checked-2fa"
    )
    oidc_staff_mfa_amr: str = "mfa"
    # How the platform authenticates at the token endpoint: empty reads it from the
    # provider's discovery (client_secret_basic when offered, the spec's default, else
    # client_secret_post); or client_secret_basic, client_secret_post, private_key_jwt.
    oidc_staff_token_auth_method: str = ""
    # private_key_jwt: a PEM file holding the RSA key whose public half the provider has.
    oidc_staff_private_key_file: str = ""
    franceconnect_issuer: str = ""
    franceconnect_client_id: str = ""
    franceconnect_client_secret: str = ""
    franceconnect_token_auth_method: str = ""
    franceconnect_private_key_file: str = ""

    upload_dir: Path = PROJECT_ROOT / "var" / "uploads"
    # ClamAV's daemon (Debian's clamav-daemon: /run/clamav/clamd.ctl). When set, every upload
    # is scanned, and refused while clamd does not answer. Empty: no scan.
    clamd_socket: str = ""
    # How the outbox worker runs inside `serve` (seconds between passes).
    outbox_interval_seconds: int = 15
    default_locale: str = "fr"
    timezone: str = "Europe/Paris"

    # --- Load ---
    # Requests handled at once; the others wait their turn. 0 (the default): the database
    # pool's size less what the outbox worker and the scheduler hold (see app.py).
    max_requests_in_flight: int = 0

    # --- Client address (issue 13) ---
    # The reverse proxies whose X-Forwarded-For is believed, comma-separated addresses or
    # networks ("10.0.0.5, 10.1.0.0/16"). Empty (the default): none, not even 127.0.0.1 — the
    # TCP peer is the client. Behind a trusted proxy, the client is the rightmost address
    # of X-Forwarded-For that is not itself a trusted proxy. See the README (deployment).
    trusted_proxies: str = ""

    # --- Sending (issue 17) ---
    # SMS and emails a dispatcher pass has at the provider at once: throughput is then the
    # provider's latency and rate, not one round trip after the other. The sending threads
    # hold no database connection.
    send_concurrency: int = Field(default=8, ge=1, le=64)

    @model_validator(mode="after")
    def _check_trusted_proxies(self) -> Settings:
        for entry in self.trusted_proxy_list:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigurationError(
                    f"PARIS_AVENIR_TRUSTED_PROXIES: {entry!r} is not an address or a network "
                    "(e.g. 10.0.0.5 or 10.1.0.0/16); '*' is refused, it would let any client "
                    "choose its own address."
                ) from None
        return self

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_prod(self) -> Settings:
        if self.env == "prod":
            if not self.secret_key or self.secret_key == DEV_SECRET_KEY:
                raise ConfigurationError(
                    "PARIS_AVENIR_SECRET_KEY is missing or is the development value: "
                    "set a random secret of at least 32 characters before starting in prod."
                )
            if len(self.secret_key) < MIN_PROD_SECRET_LENGTH:
                raise ConfigurationError(
                    "PARIS_AVENIR_SECRET_KEY is too short for prod: "
                    "use a random secret of at least 32 characters."
                )
            if not self.encryption_keys:
                raise ConfigurationError(
                    "PARIS_AVENIR_ENCRYPTION_KEYS is missing: prod needs its own Fernet key(s), "
                    "e.g. from `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`."
                )
        return self

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [entry.strip() for entry in self.trusted_proxies.split(",") if entry.strip()]

    @property
    def session_cookie_name(self) -> str:
        # __Host- binds the cookie to this exact host over HTTPS; browsers refuse it on http.
        return "__Host-session" if self.is_prod else "session"

    @property
    def csrf_cookie_name(self) -> str:
        # Same rule as the session cookie: __Host- needs Secure, and a Secure cookie is not
        # sent back over plain http by every client (http.cookiejar, curl, Safari), only by
        # Chromium and Firefox for localhost. Dev over http keeps the plain name.
        return "__Host-csrftoken" if self.is_prod else "csrftoken"

    @property
    def oidc_state_cookie_name(self) -> str:
        # The browser that starts a single sign-on holds its state: only it can finish.
        return "__Host-oidc-etat" if self.is_prod else "oidc-etat"

    # --- Metrics (issue 17) ---
    # The bearer token Prometheus presents on /metrics (Authorization: Bearer …). Empty (the
    # default): /metrics answers 404. In prod, at least 32 characters.
    metrics_token: str = ""

    @model_validator(mode="after")
    def _check_metrics_token(self) -> Settings:
        if self.is_prod and self.metrics_token and len(self.metrics_token) < MIN_PROD_SECRET_LENGTH:
            raise ConfigurationError(
                "PARIS_AVENIR_METRICS_TOKEN is too short for prod: use a random secret of at "
                "least 32 characters (or leave it empty to turn /metrics off)."
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
