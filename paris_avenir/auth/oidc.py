"""OpenID Connect authorization-code flow (FranceConnect for youths, ProConnect-compatible
single sign-on for staff), with Authlib for the OAuth 2 client and PKCE, and joserfc
(Authlib's JOSE library) for the signatures.

What a real provider expects, and what CI checks against panva's certified oidc-provider
(tests/oidc_provider): the discovery document is read on every start (so a provider that
is down gets a French page before anyone is sent to it, and rotated endpoints are followed)
and its issuer is compared with the configured one (a trailing slash apart, see
`same_issuer`); the token endpoint's client authentication comes from the settings or, when
they leave it open, from discovery (`client_secret_basic`, the spec's default, or
`client_secret_post`, or `private_key_jwt`); the claims come from the ID token and, for
those it does not hold (a conformant provider keeps them for userinfo), from the userinfo
endpoint, as JSON or as a signed JWT; the ID token is kept so that sign-out can end the
provider's session too (`end_session_url`).

Every flow is a row used once: its state (stored hashed), nonce and PKCE verifier. A wrong
or replayed state, a wrong nonce, a bad signature or a refused code all end the flow.

The state is also set in a cookie of the browser that started the flow (`begin`), and a
callback whose state is not that browser's cookie is refused (`finish(browser_state=…)`):
nobody can finish a flow in someone else's browser (login CSRF, a FranceConnect identity
linked to the wrong file). The refused callback does not consume the flow.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7523 import PrivateKeyJWT

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

logger = logging.getLogger(__name__)

FLOW_LIFETIME = timedelta(minutes=10)
ALLOWED_ALGORITHMS = ["RS256", "ES256", "PS256"]
# The callback reuses the document read at the start when it is this recent.
DISCOVERY_REUSE_SECONDS = 3600
# In the order the platform picks them when the settings leave the method open and the
# provider offers several: the spec's default first.
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
SUPPORTED_METHODS = (*SECRET_METHODS, "private_key_jwt")


@dataclass(frozen=True)
class ProviderSettings:
    name: str  # "franceconnect" or "staff"
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid email given_name family_name"
    # Where the provider sends the browser back after its sign-out.
    post_logout_redirect_uri: str = ""
    # Claims the platform reads; fetched from userinfo when the ID token lacks one.
    claims: tuple[str, ...] = ()
    # "" reads it from discovery; else client_secret_basic, client_secret_post or
    # private_key_jwt (then `private_key` is the PEM of the key registered with the
    # provider, and `client_secret` may stay empty).
    token_endpoint_auth_method: str = ""
    private_key: str = ""
    extra_authorize_params: dict[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.client_id and (self.client_secret or self.private_key))


class OidcFailure(enum.StrEnum):
    STATE = "state"  # unknown, used, or expired state: replay or a forged callback
    PROVIDER_ERROR = "provider_error"  # the user cancelled, or the provider refused
    TOKEN = "token"  # noqa: S105 - the code was refused (replayed, expired, wrong verifier)
    ID_TOKEN = "id_token"  # noqa: S105 - bad signature, issuer, audience, expiry or nonce
    USERINFO = "userinfo"  # a userinfo answer that is refused, or for another subject
    ISSUER = "issuer"  # the callback names another issuer (RFC 9207: a mix-up)
    UNAVAILABLE = "unavailable"  # provider unreachable, or its discovery unusable
    BROWSER = "browser"  # the callback came to a browser that did not start the flow


class ProviderUnavailable(Exception):
    """The provider cannot be used now: it does not answer, or its discovery document is
    unusable (another issuer, no endpoint, no method the platform can use)."""


@dataclass(frozen=True)
class OidcResult:
    flow: OidcFlow | None
    claims: dict[str, Any] | None = None
    failure: OidcFailure | None = None
    id_token: str | None = None  # kept with the session, for the provider's sign-out


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


def same_issuer(configured: str, discovered: str) -> bool:
    """OpenID Connect Discovery §4.3 wants the document's issuer identical to the URL it was
    fetched from. The only difference tolerated is one trailing slash, which an operator
    copying the URL adds or drops (the discovery URL is built without it, §4.1); the ID
    token's `iss` is then compared with the document's value, exactly."""
    return configured.rstrip("/") == discovered.rstrip("/") and bool(discovered)


class OidcClient:
    def __init__(self, settings: ProviderSettings, *, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._metadata_read_at = 0.0

    # --- Discovery ---------------------------------------------------------------------

    def metadata(self, *, fresh: bool = False) -> dict[str, Any]:
        """The provider's discovery document; raises ProviderUnavailable."""
        recent = time.monotonic() - self._metadata_read_at < DISCOVERY_REUSE_SECONDS
        if self._metadata is not None and recent and not fresh:
            return self._metadata
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=self.timeout)
            response.raise_for_status()
            metadata = response.json()
        except (httpx.HTTPError, ValueError) as error:
            logger.warning(
                "%s sign-in: discovery failed (%s)", self.settings.name, type(error).__name__
            )
            raise ProviderUnavailable("discovery") from error
        if not isinstance(metadata, dict) or not same_issuer(
            self.settings.issuer, str(metadata.get("issuer") or "")
        ):
            logger.error(
                "%s sign-in: the discovery document names another issuer than the settings",
                self.settings.name,
            )
            raise ProviderUnavailable("issuer")
        missing = {"authorization_endpoint", "token_endpoint", "jwks_uri"} - metadata.keys()
        if missing:
            logger.error("%s sign-in: discovery lacks %s", self.settings.name, sorted(missing))
            raise ProviderUnavailable("endpoints")
        self.token_endpoint_auth_method(metadata)  # unusable: refused before anyone leaves
        self._metadata, self._metadata_read_at = metadata, time.monotonic()
        return metadata

    def token_endpoint_auth_method(self, metadata: dict[str, Any]) -> str:
        # Discovery §3: when the provider lists none, client_secret_basic is its default.
        offered = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        wanted = self.settings.token_endpoint_auth_method
        if wanted:
            if wanted not in SUPPORTED_METHODS or wanted not in offered:
                logger.error(
                    "%s sign-in: the provider does not accept %s at its token endpoint",
                    self.settings.name,
                    wanted,
                )
                raise ProviderUnavailable("token_endpoint_auth_method")
            return wanted
        usable = [m for m in SECRET_METHODS if m in offered] if self.settings.client_secret else []
        if not usable and self.settings.private_key and "private_key_jwt" in offered:
            usable = ["private_key_jwt"]
        if not usable:
            logger.error(
                "%s sign-in: no token endpoint method in common with the provider (%s)",
                self.settings.name,
                ", ".join(map(str, offered)),
            )
            raise ProviderUnavailable("token_endpoint_auth_method")
        return usable[0]

    def _oauth_client(self, metadata: dict[str, Any]) -> OAuth2Client:
        method = self.token_endpoint_auth_method(metadata)
        client = OAuth2Client(
            client_id=self.settings.client_id,
            # private_key_jwt signs its assertion with the key Authlib finds here.
            client_secret=(
                self.settings.private_key
                if method == "private_key_jwt"
                else self.settings.client_secret
            ),
            redirect_uri=self.settings.redirect_uri,
            scope=self.settings.scope,
            code_challenge_method="S256",
            token_endpoint_auth_method=method,
            timeout=self.timeout,
        )
        if method == "private_key_jwt":
            client.register_client_auth_method(
                PrivateKeyJWT(metadata["token_endpoint"], alg="RS256")
            )
        return client

    # --- The flow ----------------------------------------------------------------------

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
        """Record a new flow; its URL, and its state for the browser's cookie. Raises
        ProviderUnavailable (nothing recorded) when the provider does not answer."""
        now = now or utcnow()
        # Read again on every start: nobody is sent to a provider that is down.
        metadata = self.metadata(fresh=True)
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
        with self._oauth_client(metadata) as client:
            url, _state = client.create_authorization_url(
                metadata["authorization_endpoint"],
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
        issuer: str | None = None,
        browser_state: str | None = None,
        check_browser: bool = True,
        now: datetime | None = None,
    ) -> OidcResult:
        """The callback: `issuer` is its `iss` parameter (RFC 9207), when the provider
        sends one."""
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
        try:
            metadata = self.metadata()
        except ProviderUnavailable:
            return OidcResult(flow, failure=OidcFailure.UNAVAILABLE)
        # RFC 9207: a provider that announces `iss` in its callbacks must send this one's
        # issuer, exactly; any other value means the answer comes from another provider.
        if (
            issuer is not None or metadata.get("authorization_response_iss_parameter_supported")
        ) and (issuer != metadata["issuer"]):
            return OidcResult(flow, failure=OidcFailure.ISSUER)
        if error or not code:
            return OidcResult(flow, failure=OidcFailure.PROVIDER_ERROR)
        try:
            with self._oauth_client(metadata) as client:
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
        claims = self._validated_claims(token, jwks, metadata["issuer"], flow.nonce, now)
        if claims is None:
            return OidcResult(flow, failure=OidcFailure.ID_TOKEN)
        missing = [name for name in self.settings.claims if name not in claims]
        if missing and metadata.get("userinfo_endpoint"):
            try:
                extra = self._userinfo(metadata, str(token.get("access_token") or ""), jwks)
            except httpx.TransportError:
                return OidcResult(flow, failure=OidcFailure.UNAVAILABLE)
            # OpenID Connect Core §5.3.2: userinfo's sub must be the ID token's.
            if extra is None or extra.get("sub") != claims["sub"]:
                return OidcResult(flow, failure=OidcFailure.USERINFO)
            # The ID token's signed claims win; userinfo fills in the others.
            claims = {**extra, **claims}
        return OidcResult(flow, claims=claims, id_token=str(token["id_token"]))

    def _validated_claims(
        self,
        token: dict[str, Any],
        jwks: dict[str, Any],
        issuer: str,
        nonce: str,
        now: datetime,
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
                {"iss": {"essential": True, "values": [issuer]}},
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

    def _userinfo(
        self, metadata: dict[str, Any], access_token: str, jwks: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The userinfo answer (Core §5.3.2): JSON, or a signed JWT (FranceConnect v2 and
        ProConnect sign theirs) whose signature, issuer and audience are checked."""
        response = httpx.get(
            metadata["userinfo_endpoint"],
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/jwt, application/json",
            },
            timeout=self.timeout,
        )
        if response.status_code != 200:
            return None
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "application/jwt":
                decoded = jwt.decode(
                    response.text.strip(),
                    KeySet.import_key_set(jwks),  # type: ignore[arg-type]
                    algorithms=ALLOWED_ALGORITHMS,
                )
                jwt.JWTClaimsRegistry(
                    iss={"essential": False, "value": metadata["issuer"]},
                    aud={"essential": False, "value": self.settings.client_id},
                ).validate(decoded.claims)
                answer: Any = decoded.claims
            else:
                answer = response.json()
        except (JoseError, ValueError):
            return None
        return answer if isinstance(answer, dict) else None

    # --- Sign-out ----------------------------------------------------------------------

    def end_session_url(self, id_token: str) -> str | None:
        """Where to send the browser so that the provider's session ends too (OpenID
        Connect RP-Initiated Logout 1.0), or None when the provider has no such endpoint or
        does not answer (then only the platform's session ends)."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except ProviderUnavailable:
            return None
        if not endpoint:
            return None
        params = {
            "id_token_hint": id_token,
            "client_id": self.settings.client_id,
            # FranceConnect requires a state; nothing comes back to check against it.
            "state": new_token(),
        }
        if self.settings.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.settings.post_logout_redirect_uri
        return f"{endpoint}{'&' if '?' in str(endpoint) else '?'}{urlencode(params)}"
