"""OpenID Connect authorization-code flow (FranceConnect for youths, ProConnect-compatible
single sign-on for staff), with Authlib for the OAuth 2 client and PKCE, and joserfc
(Authlib's JOSE library) for the ID token's signature.

Every flow is a row used once: its state (stored hashed), nonce and PKCE verifier. A wrong
or replayed state, a wrong nonce, a bad signature or a refused code all end the flow.

The state is also set in a cookie of the browser that started the flow (`begin`), and a
callback whose state is not that browser's cookie is refused (`finish(browser_state=…)`):
nobody can finish a flow in someone else's browser (login CSRF, a FranceConnect identity
linked to the wrong file). The refused callback does not consume the flow.
"""

from __future__ import annotations

import enum
import secrets
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning

# Authlib 1.9 prefers the httpx2 fork and warns when it falls back to httpx. The project
# uses httpx everywhere (and FastAPI's test transport is httpx): one client, not two.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paris_avenir.auth.models import OidcFlow
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import new_token, token_hash

FLOW_LIFETIME = timedelta(minutes=10)
ALLOWED_ALGORITHMS = ["RS256", "ES256", "PS256"]


@dataclass(frozen=True)
class ProviderSettings:
    name: str  # "franceconnect" or "staff"
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid email given_name family_name"
    extra_authorize_params: dict[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.client_id and self.client_secret)


class OidcFailure(enum.StrEnum):
    STATE = "state"  # unknown, used, or expired state: replay or a forged callback
    PROVIDER_ERROR = "provider_error"  # the user cancelled, or the provider refused
    TOKEN = "token"  # noqa: S105 - the code was refused (replayed, expired, wrong verifier)
    ID_TOKEN = "id_token"  # noqa: S105 - bad signature, issuer, audience, expiry or nonce
    UNAVAILABLE = "unavailable"  # provider unreachable
    BROWSER = "browser"  # the callback came to a browser that did not start the flow


@dataclass(frozen=True)
class OidcResult:
    flow: OidcFlow | None
    claims: dict[str, Any] | None = None
    failure: OidcFailure | None = None


@dataclass(frozen=True)
class StartedFlow:
    url: str  # the provider's authorization URL
    state: str  # for the starting browser's cookie


def accepts_mfa(claims: dict[str, Any], *, acr_values: set[str], amr_values: set[str]) -> bool:
    """Whether the ID token asserts a second factor: an accepted `acr`, or an `amr` list
    holding an accepted method."""
    acr = claims.get("acr")
    if isinstance(acr, str) and acr in acr_values:
        return True
    amr = claims.get("amr")
    return isinstance(amr, list) and any(isinstance(m, str) and m in amr_values for m in amr)


class OidcClient:
    def __init__(self, settings: ProviderSettings, *, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            response = httpx.get(url, timeout=self.timeout)
            response.raise_for_status()
            metadata = response.json()
            if metadata.get("issuer") != self.settings.issuer:
                raise ValueError("the discovery document names another issuer")
            self._metadata = metadata
        return self._metadata

    def _oauth_client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            redirect_uri=self.settings.redirect_uri,
            scope=self.settings.scope,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post",  # noqa: S106
            timeout=self.timeout,
        )

    def start(
        self,
        session: Session,
        *,
        purpose: str,
        youth_id: uuid.UUID | None = None,
        now: datetime | None = None,
    ) -> str:
        """Record a new flow and return the provider's authorization URL."""
        return self.begin(session, purpose=purpose, youth_id=youth_id, now=now).url

    def begin(
        self,
        session: Session,
        *,
        purpose: str,
        youth_id: uuid.UUID | None = None,
        now: datetime | None = None,
    ) -> StartedFlow:
        """Record a new flow; its URL, and its state for the browser's cookie."""
        now = now or utcnow()
        state, nonce, verifier = new_token(), new_token(), generate_token(64)
        session.add(
            OidcFlow(
                state_hash=token_hash(state),
                provider=self.settings.name,
                purpose=purpose,
                nonce=nonce,
                code_verifier=verifier,
                youth_id=youth_id,
                expires_at=now + FLOW_LIFETIME,
            )
        )
        session.flush()
        with self._oauth_client() as client:
            url, _state = client.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=state,
                nonce=nonce,
                code_verifier=verifier,
                **self.settings.extra_authorize_params,
            )
        return StartedFlow(str(url), state)

    def finish(
        self,
        session: Session,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        browser_state: str | None = None,
        check_browser: bool = True,
        now: datetime | None = None,
    ) -> OidcResult:
        now = now or utcnow()
        flow = (
            session.scalar(
                select(OidcFlow).where(
                    OidcFlow.state_hash == token_hash(state or ""),
                    OidcFlow.provider == self.settings.name,
                )
            )
            if state
            else None
        )
        if flow is None or flow.used_at is not None or flow.expires_at <= now:
            return OidcResult(None, failure=OidcFailure.STATE)
        if check_browser and not (
            state
            and browser_state
            and secrets.compare_digest(state.encode(), browser_state.encode())
        ):
            # Another browser: refused, and the flow stays for the one that started it.
            return OidcResult(None, failure=OidcFailure.BROWSER)
        # One try per flow, whatever happens next, decided by the database: of parallel
        # callbacks with one state, exactly one goes on to the provider.
        claimed = session.execute(
            update(OidcFlow)
            .where(OidcFlow.id == flow.id, OidcFlow.used_at.is_(None))
            .values(used_at=now)
            .returning(OidcFlow.id)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return OidcResult(None, failure=OidcFailure.STATE)
        flow.used_at = now
        if error or not code:
            return OidcResult(flow, failure=OidcFailure.PROVIDER_ERROR)
        try:
            metadata = self.metadata()
            with self._oauth_client() as client:
                token = client.fetch_token(
                    metadata["token_endpoint"],
                    code=code,
                    code_verifier=flow.code_verifier,
                    grant_type="authorization_code",
                )
            jwks = httpx.get(metadata["jwks_uri"], timeout=self.timeout).json()
        except httpx.TransportError:
            return OidcResult(flow, failure=OidcFailure.UNAVAILABLE)
        except Exception:  # Authlib raises OAuthError subclasses for refused codes
            return OidcResult(flow, failure=OidcFailure.TOKEN)
        claims = self._validated_claims(token, jwks, flow.nonce, now)
        if claims is None:
            return OidcResult(flow, failure=OidcFailure.ID_TOKEN)
        return OidcResult(flow, claims=claims)

    def _validated_claims(
        self, token: dict[str, Any], jwks: dict[str, Any], nonce: str, now: datetime
    ) -> dict[str, Any] | None:
        id_token = token.get("id_token")
        if not id_token:
            return None
        try:
            key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            decoded = jwt.decode(id_token, key_set, algorithms=ALLOWED_ALGORITHMS)
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {"iss": {"essential": True, "values": [self.settings.issuer]}},
                {
                    "nonce": nonce,
                    "client_id": self.settings.client_id,
                    "access_token": token.get("access_token"),
                },
            )
            claims.validate(now=int(now.timestamp()), leeway=60)
        except (JoseError, ValueError, Exception):  # any invalid token is refused alike
            return None
        if not claims.get("sub"):
            return None
        return dict(claims)
