"""Staff single sign-on and FranceConnect against panva's certified oidc-provider (npm),
on loopback: the provider's own pages, cookies, token endpoint, userinfo and sign-out. The
platform runs in-process; the provider's side of the browser is tests/oidc_servers.py's
ProviderBrowser. The same flows in Chromium, JavaScript on and off, are in
tests/browser/test_oidc_provider.py.

Providers, as real ones are set up:
- FranceConnect-like: client_secret_post only, acr eidas1, claims only in userinfo;
- ProConnect-like: userinfo as a signed JWT, client_secret_post or private_key_jwt;
- a provider that accepts only client_secret_basic, userinfo as JSON;
- one that puts the claims in the ID token (then userinfo is not called).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from joserfc.jwk import RSAKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paris_avenir.app import build_oidc_clients
from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod, UserSession
from paris_avenir.auth.oidc import OidcClient, ProviderSettings
from paris_avenir.auth.staff_local import create_staff as create_staff_account
from paris_avenir.config import Settings
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.conftest import BACKENDS, postgres_schema_url
from tests.factories import create_youth
from tests.helpers import at_once, post_form, provider_destination, sign_in_as
from tests.oidc_servers import (
    FRANCECONNECT_SCOPES,
    PanvaProvider,
    ProviderBrowser,
    ProviderClient,
)
from tests.servers import race_platform

# The provider is a Node process with the machine's clock: ID tokens are checked against it.
pytestmark = pytest.mark.wall_clock

BASE = "http://testserver"
FC_CALLBACK = BASE + "/connexion/franceconnect/retour"
FC_SIGNED_OUT = BASE + "/connexion/franceconnect/deconnecte"
STAFF_CALLBACK = BASE + "/pro/connexion/oidc/retour"
STAFF_SIGNED_OUT = BASE + "/pro/connexion/oidc/deconnecte"
SECRET = "a-client-secret-of-more-than-thirty-two-characters"
AGENT = {
    "email": "julien.m@example.org",
    "email_verified": True,
    "given_name": "Julien",
    "usual_name": "Marchand",
}
CLIENT_KEY = RSAKey.generate_key(2048, parameters={"kid": "paris-avenir-test"})


def _staff_client(client_id: str, method: str, **extra: object) -> ProviderClient:
    return ProviderClient(
        client_id,
        SECRET,
        STAFF_CALLBACK,
        STAFF_SIGNED_OUT,
        method,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def franceconnect_provider() -> Iterator[PanvaProvider]:
    with PanvaProvider(
        clients=[
            ProviderClient("fc-client", SECRET, FC_CALLBACK, FC_SIGNED_OUT, "client_secret_post")
        ],
        accounts={
            "fc-tesfay": {"given_name": "Tesfay", "family_name": "Haile"},
            "fc-hawa-account": {"given_name": "Hawa", "family_name": "Diallo"},
        },
        scopes=FRANCECONNECT_SCOPES,
        client_auth_methods=["client_secret_post"],
        acr_values=["eidas1"],
    ) as provider:
        yield provider


@pytest.fixture(scope="module")
def proconnect_provider() -> Iterator[PanvaProvider]:
    with PanvaProvider(
        clients=[
            _staff_client("pc-client", "client_secret_post", userinfo_signed_response_alg="RS256"),
            _staff_client(
                "pc-key-client",
                "private_key_jwt",
                userinfo_signed_response_alg="RS256",
                jwks={"keys": [CLIENT_KEY.as_dict(private=False)]},
            ),
        ],
        accounts={"agent-42": AGENT},
        client_auth_methods=["client_secret_post", "private_key_jwt"],
    ) as provider:
        yield provider


@pytest.fixture(scope="module")
def basic_only_provider() -> Iterator[PanvaProvider]:
    with PanvaProvider(
        clients=[_staff_client("basic-client", "client_secret_basic")],
        accounts={"agent-42": AGENT},
        client_auth_methods=["client_secret_basic"],
    ) as provider:
        yield provider


@pytest.fixture(scope="module")
def id_token_claims_provider() -> Iterator[PanvaProvider]:
    with PanvaProvider(
        clients=[_staff_client("id-client", "client_secret_basic")],
        accounts={"agent-42": AGENT},
        claims_in_id_token=True,
    ) as provider:
        yield provider


def use_provider(
    app: FastAPI, name: str, provider: PanvaProvider, client_id: str, **changes: str
) -> OidcClient:
    """The platform's own client for `name`, as create_app builds it, pointed at `provider`."""
    settings: Settings = app.state.settings
    built = build_oidc_clients(settings.model_copy(update={"base_url": BASE}))[name]
    values: dict[str, str] = {"issuer": provider.issuer, "client_id": client_id}
    client = OidcClient(
        replace(built.settings, **({"client_secret": SECRET} | values | changes))  # type: ignore[arg-type]
    )
    app.state.oidc[name] = client
    return client


@pytest.fixture
def browser() -> Iterator[ProviderBrowser]:
    """The provider's side of the youth's or agent's browser (its cookies, its pages)."""
    browser = ProviderBrowser(BASE)
    yield browser
    browser.close()


async def sign_in_through(
    client: httpx.AsyncClient, browser: ProviderBrowser, start: str, *, login: str | None
) -> httpx.Response:
    """Our start (a link, or the linking form), the provider's pages, our callback."""
    ours = await (
        post_form(client, start) if start.startswith("/mon-espace") else client.get(start)
    )
    callback = browser.visit(provider_destination(ours), login=login)
    assert callback.startswith(BASE), callback
    return await client.get(callback.removeprefix(BASE))


@pytest.fixture
def tesfay(session: Session) -> Youth:
    youth = create_youth(session, first_name="Tesfay", franceconnect_subject="fc-tesfay")
    session.commit()
    return youth


@pytest.fixture
def agent(app: FastAPI, session: Session) -> tuple[StaffUser, pyotp.TOTP]:
    """An account an admin created (password and TOTP enrolled), not yet bound to the
    provider: the first single sign-on binds it by its verified email."""
    created = create_staff_account(
        session,
        app.state.cipher,
        email=str(AGENT["email"]),
        full_name="Julien Marchand",
        role=StaffRole.REFERENT,
        password="un mot de passe assez long",
    )
    session.commit()
    return created.staff, pyotp.TOTP(pyotp.parse_uri(created.totp_uri).secret)


async def staff_sign_on(
    client: httpx.AsyncClient, browser: ProviderBrowser, totp: pyotp.TOTP
) -> httpx.Response:
    """The City's sign-in, then the platform's TOTP code (the provider asserts no second
    factor)."""
    back = await sign_in_through(client, browser, "/pro/connexion/oidc", login="agent-42")
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/pro/connexion/oidc/code"
    return await post_form(client, "/pro/connexion/oidc/code", {"totp": totp.now()})


def session_of(session: Session, **owner: object) -> UserSession:
    session.expire_all()
    return session.scalars(
        select(UserSession).filter_by(**owner).order_by(UserSession.created_at.desc())
    ).first()  # type: ignore[return-value]


# --- FranceConnect ---------------------------------------------------------------------


async def test_franceconnect_signs_in_with_client_secret_post_as_discovery_says(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    franceconnect_provider: PanvaProvider,
    tesfay: Youth,
    session: Session,
) -> None:
    use_provider(app, "franceconnect", franceconnect_provider, "fc-client")
    before = len(franceconnect_provider.token_requests())
    response = await sign_in_through(client, browser, "/connexion/franceconnect", login="fc-tesfay")
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace"
    assert "Bonjour Tesfay" in (await client.get("/mon-espace")).text
    # One token request, with the secret in the body (no Authorization header), accepted.
    assert franceconnect_provider.token_requests()[before:] == [("POST", "/token", 200, "-")]
    # The session keeps the ID token (encrypted at rest) for the provider's sign-out.
    assert session_of(session, youth_id=tesfay.id).id_token


async def test_signing_out_ends_the_franceconnect_session_too(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    franceconnect_provider: PanvaProvider,
    tesfay: Youth,
    session: Session,
) -> None:
    use_provider(app, "franceconnect", franceconnect_provider, "fc-client")
    await sign_in_through(client, browser, "/connexion/franceconnect", login="fc-tesfay")
    # While the provider's session lives, a second tap signs in without any question: on a
    # shared phone, that is the next person signed in as Tesfay.
    await post_form(client, "/deconnexion")  # as before: not through the provider
    session.execute(update(UserSession).values(id_token=None))
    again = await sign_in_through(client, browser, "/connexion/franceconnect", login=None)
    assert again.headers["location"] == "/mon-espace"

    leaving = await post_form(client, "/deconnexion")
    assert (await client.get("/mon-espace")).status_code == 303  # ours ended at once
    end_session = provider_destination(leaving)
    query = parse_qs(urlsplit(end_session).query)
    assert end_session.startswith(franceconnect_provider.issuer + "/session/end?")
    assert query["post_logout_redirect_uri"] == [FC_SIGNED_OUT] and query["id_token_hint"]
    assert "Nous vous déconnectons aussi de FranceConnect" in leaving.text
    assert session_of(session, youth_id=tesfay.id).id_token is None  # not kept after

    back = browser.visit(end_session)  # the provider asks, the youth confirms
    assert back.split("?")[0] == FC_SIGNED_OUT
    landing = await client.get(back.removeprefix(BASE))
    assert landing.headers["location"] == "/connexion?deconnecte=1"
    signed_out = await client.get(landing.headers["location"])
    assert "Vous êtes déconnecté" in signed_out.text

    # The next tap on FranceConnect asks who signs in.
    ours = await client.get("/connexion/franceconnect")
    with pytest.raises(AssertionError, match="the provider asks who signs in"):
        browser.visit(provider_destination(ours), login=None)
    assert browser.asked_to_sign_in()


async def test_a_youth_links_franceconnect_through_a_page_that_csp_lets_through(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    franceconnect_provider: PanvaProvider,
    session: Session,
) -> None:
    hawa = create_youth(session, first_name="Hawa")
    session.commit()
    use_provider(app, "franceconnect", franceconnect_provider, "fc-client")
    sign_in_as(client, app, session, youth=hawa)
    page = await post_form(client, "/mon-espace/franceconnect")
    # A page, not a redirect: CSP form-action 'self' stays as strict as it was.
    assert page.status_code == 200
    assert "form-action 'self'" in page.headers["content-security-policy"]
    callback = browser.visit(provider_destination(page), login="fc-hawa-account")
    response = await client.get(callback.removeprefix(BASE))
    assert response.headers["location"] == "/mon-espace"
    session.refresh(hawa)
    assert hawa.franceconnect_subject == "fc-hawa-account"


# --- Staff single sign-on ---------------------------------------------------------------


async def test_claims_only_in_a_signed_userinfo_jwt_sign_the_agent_on(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    proconnect_provider: PanvaProvider,
    agent: tuple[StaffUser, pyotp.TOTP],
    session: Session,
) -> None:
    staff, totp = agent
    use_provider(app, "staff", proconnect_provider, "pc-client")  # userinfo: signed JWT
    before = len(proconnect_provider.requests)
    response = await staff_sign_on(client, browser, totp)
    assert response.status_code == 303 and response.headers["location"] == "/pro"
    assert (await client.get("/pro")).status_code == 200
    session.refresh(staff)
    assert staff.oidc_subject == "agent-42"  # bound by the email userinfo gave
    paths = [request[1] for request in proconnect_provider.requests[before:]]
    assert "/me" in paths  # the email was only in userinfo
    assert session_of(session, staff_id=staff.id).id_token  # kept across the TOTP step


async def test_a_provider_that_accepts_only_client_secret_basic(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    basic_only_provider: PanvaProvider,
    agent: tuple[StaffUser, pyotp.TOTP],
) -> None:
    _staff, totp = agent
    use_provider(app, "staff", basic_only_provider, "basic-client")
    before = len(basic_only_provider.token_requests())
    response = await staff_sign_on(client, browser, totp)
    assert response.headers["location"] == "/pro"
    assert basic_only_provider.token_requests()[before:] == [("POST", "/token", 200, "Basic")]


async def test_private_key_jwt_when_the_settings_ask_for_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    proconnect_provider: PanvaProvider,
    agent: tuple[StaffUser, pyotp.TOTP],
) -> None:
    _staff, totp = agent
    use_provider(
        app,
        "staff",
        proconnect_provider,
        "pc-key-client",
        token_endpoint_auth_method="private_key_jwt",
        private_key=CLIENT_KEY.as_pem(private=True).decode(),
        client_secret="",
    )
    response = await staff_sign_on(client, browser, totp)
    assert response.headers["location"] == "/pro"


async def test_claims_in_the_id_token_need_no_userinfo_call(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    id_token_claims_provider: PanvaProvider,
    agent: tuple[StaffUser, pyotp.TOTP],
) -> None:
    _staff, totp = agent
    use_provider(app, "staff", id_token_claims_provider, "id-client")
    before = len(id_token_claims_provider.requests)
    response = await staff_sign_on(client, browser, totp)
    assert response.headers["location"] == "/pro"
    assert "/me" not in [request[1] for request in id_token_claims_provider.requests[before:]]


async def test_staff_sign_out_ends_the_providers_session(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    basic_only_provider: PanvaProvider,
    agent: tuple[StaffUser, pyotp.TOTP],
) -> None:
    _staff, totp = agent
    use_provider(app, "staff", basic_only_provider, "basic-client")
    await staff_sign_on(client, browser, totp)
    leaving = await post_form(client, "/deconnexion")
    assert "Nous vous déconnectons aussi du compte de la Ville" in leaving.text
    back = browser.visit(provider_destination(leaving))
    assert back.split("?")[0] == STAFF_SIGNED_OUT
    landing = await client.get(back.removeprefix(BASE))
    assert landing.headers["location"] == "/pro/connexion?deconnecte=1"
    ours = await client.get("/pro/connexion/oidc")
    with pytest.raises(AssertionError, match="the provider asks who signs in"):
        browser.visit(provider_destination(ours), login=None)


# --- What goes wrong --------------------------------------------------------------------


async def test_a_provider_that_is_down_gets_a_french_page_with_the_other_ways_in(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    gone = PanvaProvider(clients=[], accounts={}).start()
    gone.close()  # its port now refuses connections
    use_provider(app, "franceconnect", gone, "fc-client")
    use_provider(app, "staff", gone, "pc-client")
    with caplog.at_level(logging.WARNING, logger="paris_avenir.auth.oidc"):
        youth_page = await client.get("/connexion/franceconnect")
        staff_page = await client.get("/pro/connexion/oidc")
    assert youth_page.status_code == 503
    assert "FranceConnect ne répond pas pour le moment" in youth_page.text
    assert 'action="/connexion"' in youth_page.text  # the code form is right there
    assert staff_page.status_code == 503
    assert "Le compte de la Ville ne répond pas pour le moment" in staff_page.text
    assert 'action="/pro/connexion"' in staff_page.text
    assert "discovery failed (ConnectError)" in caplog.text  # the operator sees why


async def test_linking_while_franceconnect_is_down_says_so_and_leads_back(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    gone = PanvaProvider(clients=[], accounts={}).start()
    gone.close()
    use_provider(app, "franceconnect", gone, "fc-client")
    hawa = create_youth(session, first_name="Hawa")
    session.commit()
    sign_in_as(client, app, session, youth=hawa)
    page = await post_form(client, "/mon-espace/franceconnect")
    assert page.status_code == 503
    assert "FranceConnect ne répond pas pour le moment. Réessayez plus tard." in page.text
    assert 'href="/mon-espace"' in page.text and 'http-equiv="refresh"' not in page.text


async def test_a_provider_that_goes_down_during_the_sign_in(
    app: FastAPI, client: httpx.AsyncClient, browser: ProviderBrowser, tesfay: Youth
) -> None:
    provider = PanvaProvider(
        clients=[ProviderClient("fc-client", SECRET, FC_CALLBACK, FC_SIGNED_OUT)],
        accounts={"fc-tesfay": {}},
        scopes=FRANCECONNECT_SCOPES,
    ).start()
    try:
        use_provider(app, "franceconnect", provider, "fc-client")
        ours = await client.get("/connexion/franceconnect")
        callback = browser.visit(provider_destination(ours), login="fc-tesfay")
    finally:
        provider.close()  # before the platform exchanges the code
    response = await client.get(callback.removeprefix(BASE))
    assert response.status_code == 400
    assert "Le service de connexion ne répond pas" in response.text
    assert (await client.get("/mon-espace")).status_code == 303


async def test_an_issuer_written_with_a_trailing_slash_still_works(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    franceconnect_provider: PanvaProvider,
    tesfay: Youth,
) -> None:
    use_provider(app, "franceconnect", franceconnect_provider, "fc-client")
    app.state.oidc["franceconnect"] = OidcClient(
        replace(
            app.state.oidc["franceconnect"].settings, issuer=franceconnect_provider.issuer + "/"
        )
    )
    response = await sign_in_through(client, browser, "/connexion/franceconnect", login="fc-tesfay")
    assert response.headers["location"] == "/mon-espace"


async def test_a_discovery_document_naming_another_issuer_is_refused(
    app: FastAPI, client: httpx.AsyncClient, franceconnect_provider: PanvaProvider
) -> None:
    use_provider(app, "franceconnect", franceconnect_provider, "fc-client")
    # Same server, another issuer in the settings: its discovery is not this issuer's.
    client_for_other = OidcClient(
        replace(
            app.state.oidc["franceconnect"].settings,
            issuer=franceconnect_provider.issuer.replace("127.0.0.2", "localhost"),
        )
    )
    app.state.oidc["franceconnect"] = client_for_other
    response = await client.get("/connexion/franceconnect")
    assert response.status_code == 503
    assert "FranceConnect ne répond pas pour le moment" in response.text


async def test_a_callback_naming_another_issuer_is_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser: ProviderBrowser,
    franceconnect_provider: PanvaProvider,
    tesfay: Youth,
    session: Session,
) -> None:
    """RFC 9207: the provider announces `iss` in its callbacks; a callback with another
    issuer's name (a mix-up between two providers) signs nobody in."""
    use_provider(app, "franceconnect", franceconnect_provider, "fc-client")
    ours = await client.get("/connexion/franceconnect")
    callback = urlsplit(browser.visit(provider_destination(ours), login="fc-tesfay"))
    query = {key: values[0] for key, values in parse_qs(callback.query).items()}
    assert query["iss"] == franceconnect_provider.issuer
    query["iss"] = "https://another-provider.example"
    response = await client.get(f"{callback.path}?{urlencode(query)}")
    assert response.status_code == 400
    assert (await client.get("/mon-espace")).status_code == 303
    reasons = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "youth.sign_in_failed")
    ).all()
    assert {"method": "franceconnect", "reason": "issuer"} in reasons


async def test_a_method_the_provider_does_not_offer_is_caught_before_anyone_leaves(
    app: FastAPI,
    client: httpx.AsyncClient,
    franceconnect_provider: PanvaProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_provider(
        app,
        "franceconnect",
        franceconnect_provider,
        "fc-client",
        token_endpoint_auth_method="client_secret_basic",
    )
    with caplog.at_level(logging.ERROR, logger="paris_avenir.auth.oidc"):
        response = await client.get("/connexion/franceconnect")
    assert response.status_code == 503
    assert "does not accept client_secret_basic" in caplog.text


def test_the_settings_build_both_providers_with_their_sign_out_return() -> None:
    clients = build_oidc_clients(
        Settings(
            env="dev",
            secret_key="x" * 40,
            base_url="https://avenir.paris.example/",
            oidc_staff_token_auth_method="client_secret_basic",
        )
    )
    assert clients["franceconnect"].settings.post_logout_redirect_uri == (
        "https://avenir.paris.example/connexion/franceconnect/deconnecte"
    )
    assert clients["staff"].settings.token_endpoint_auth_method == "client_secret_basic"
    assert isinstance(clients["staff"].settings, ProviderSettings)


@pytest.mark.parametrize("backend", BACKENDS)
def test_thirty_sign_outs_at_once_send_the_browser_to_the_provider_once(
    backend: str, tmp_path: Path, franceconnect_provider: PanvaProvider
) -> None:
    """The ID token leaves the database with the session: of 30 parallel sign-outs with one
    cookie, one ends the session and goes on to the provider; the others only land on the
    sign-in page."""
    if backend == "postgresql":
        url = postgres_schema_url("oidc_races", needed_for="races on PostgreSQL")
    else:
        url = f"sqlite:///{tmp_path / 'races.sqlite3'}"
    with race_platform(url, tmp_path) as platform:
        use_provider(platform.app, "franceconnect", franceconnect_provider, "fc-client")
        with platform.factory.begin() as session:
            youth = create_youth(session, franceconnect_subject="fc-race")
            started = sessions.start_session(
                session, youth_id=youth.id, method=AuthMethod.FRANCECONNECT, id_token="a.b.c"
            )
        cookies = {platform.settings.session_cookie_name: started.token}
        with httpx.Client(base_url=platform.url, cookies=cookies) as browser:
            page = browser.get("/mon-espace")
            csrf = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
            assert page.status_code == 200 and csrf
            cookies = dict(browser.cookies)

        def sign_out(_: int) -> int:
            with httpx.Client(base_url=platform.url, cookies=cookies, timeout=60) as client:
                return client.post("/deconnexion", data={"csrftoken": csrf.group(1)}).status_code

        assert Counter(at_once(30, sign_out)) == {200: 1, 303: 29}
        with platform.factory() as session:
            ended = session.scalars(select(UserSession).filter_by(youth_id=youth.id)).one()
            assert ended.revoked_at is not None and ended.id_token is None
