"""OpenID Connect under attack, against the provider on loopback: a flow finishes only in
the browser that started it (staff single sign-on and FranceConnect linking); staff single
sign-on counts as two factors only when the provider asserts it, else the platform's TOTP
is asked; an account is bound by email only when the provider says it is verified."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod, UserSession
from paris_avenir.auth.oidc import OidcClient, OidcFailure, ProviderSettings
from paris_avenir.auth.staff_local import create_staff
from paris_avenir.db import create_database_engine, make_session_factory, utcnow
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.conftest import postgres_schema_url
from tests.factories import create_youth
from tests.helpers import post_form, provider_destination, sign_in_as
from tests.servers import OidcProvider

PASSWORD = "lampadaire girafe orageuse 42"
VERIFIED = {"email": "julien.m@example.org", "email_verified": True}


def configure(app: FastAPI, provider: OidcProvider, name: str, callback: str) -> None:
    app.state.oidc[name] = OidcClient(
        ProviderSettings(
            name=name,
            issuer=provider.issuer,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            redirect_uri="http://testserver" + callback,
        )
    )


@pytest.fixture
def staff_sso(app: FastAPI, oidc_provider: OidcProvider) -> OidcProvider:
    configure(app, oidc_provider, "staff", "/pro/connexion/oidc/retour")
    oidc_provider.next_subject = "agent-42"
    return oidc_provider


@pytest.fixture
def account(app: FastAPI, session: Session) -> tuple[StaffUser, str]:
    created = create_staff(
        session,
        app.state.cipher,
        email="julien.m@example.org",
        full_name="Julien Marchand",
        role=StaffRole.REFERENT,
        password=PASSWORD,
    )
    session.commit()
    return created.staff, pyotp.parse_uri(created.totp_uri).secret


async def provider_callback(client: httpx.AsyncClient, start: str, *, post: bool = False) -> str:
    """Our redirect to the provider (in `client`, the browser that starts), the provider's
    redirect back: the callback URL, which any browser may then open."""
    ours = await (post_form(client, start) if post else client.get(start))
    async with httpx.AsyncClient() as at_provider:
        theirs = await at_provider.get(provider_destination(ours))
    assert theirs.status_code == 302
    callback = urlsplit(theirs.headers["location"])
    return f"{callback.path}?{callback.query}"


def other_browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def _audit_reasons(session: Session) -> list[object]:
    return [
        detail.get("reason")
        for detail in session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "staff.sign_in_failed")
        )
    ]


async def test_a_staff_callback_opened_in_another_browser_is_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
    session: Session,
) -> None:
    staff_sso.next_claims = {**VERIFIED, "acr": "eidas2"}
    callback = await provider_callback(client, "/pro/connexion/oidc")
    async with other_browser(app) as stranger:
        refused = await stranger.get(callback)
        assert refused.status_code == 400
        assert "commencée dans un autre navigateur" in refused.text
        assert (await stranger.get("/pro")).status_code == 303  # not signed in
    assert staff_sso.token_requests == 0  # the code was never exchanged
    assert "browser" in _audit_reasons(session)
    # The browser that started it still finishes it.
    finished = await client.get(callback)
    assert finished.status_code == 303 and finished.headers["location"] == "/pro"


async def test_a_franceconnect_link_finished_in_someone_elses_browser_is_refused(
    app: FastAPI, client: httpx.AsyncClient, oidc_provider: OidcProvider, session: Session
) -> None:
    configure(app, oidc_provider, "franceconnect", "/connexion/franceconnect/retour")
    starter = create_youth(session, first_name="Idrissa")
    session.commit()
    sign_in_as(client, app, session, youth=starter)
    oidc_provider.next_subject = "fc-victim"  # whoever signs in at the provider
    callback = await provider_callback(client, "/mon-espace/franceconnect", post=True)
    async with other_browser(app) as victim:
        refused = await victim.get(callback)
    assert refused.status_code == 400
    assert "commencée dans un autre navigateur" in refused.text
    session.expire_all()
    assert session.get_one(Youth, starter.id).franceconnect_subject is None
    # The same refusal for a youth reading English.
    oidc_provider.next_subject = "fc-idrissa"
    callback = await provider_callback(client, "/mon-espace/franceconnect", post=True)
    async with other_browser(app) as victim:
        victim.cookies.set("langue", "en")
        refused_en = await victim.get(callback)
    assert refused_en.status_code == 400 and "another browser" in refused_en.text


async def test_without_a_second_factor_from_the_provider_the_platform_asks_for_totp(
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
    session: Session,
) -> None:
    staff, secret = account
    staff_sso.next_claims = {**VERIFIED, "acr": "eidas1", "amr": ["pwd"]}
    back = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert back.status_code == 303 and back.headers["location"] == "/pro/connexion/oidc/code"
    assert (await client.get("/pro")).status_code == 303  # not signed in yet
    form = await client.get(back.headers["location"])
    assert form.status_code == 200 and "n’a pas confirmé un second facteur" in form.text
    wrong = await post_form(client, "/pro/connexion/oidc/code", {"totp": "000000"})
    assert wrong.status_code == 422 and "Code incorrect" in wrong.text
    code = pyotp.TOTP(secret).now()
    done = await post_form(client, "/pro/connexion/oidc/code", {"totp": code})
    assert done.status_code == 303 and done.headers["location"] == "/pro"
    assert (await client.get("/pro")).status_code == 200
    session.expire_all()
    method = session.scalars(
        select(UserSession.auth_method).where(
            UserSession.staff_id == staff.id, UserSession.revoked_at.is_(None)
        )
    ).one()
    assert method is AuthMethod.OIDC
    # The flow is over, and the same code cannot open a second session with a new flow.
    assert (await client.get("/pro/connexion/oidc/code")).status_code == 410
    again = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert again.headers["location"] == "/pro/connexion/oidc/code"
    replayed = await post_form(client, "/pro/connexion/oidc/code", {"totp": code})
    assert replayed.status_code == 422


async def test_the_totp_step_belongs_to_the_browser_that_signed_on(
    app: FastAPI,
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
) -> None:
    _staff, secret = account
    staff_sso.next_claims = dict(VERIFIED)
    await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    async with other_browser(app) as stranger:
        assert (await stranger.get("/pro/connexion/oidc/code")).status_code == 410
        token_page = await stranger.get("/pro/connexion")
        assert token_page.status_code == 200
        stolen = await post_form(
            stranger, "/pro/connexion/oidc/code", {"totp": pyotp.TOTP(secret).now()}
        )
        assert stolen.status_code == 410
        assert (await stranger.get("/pro")).status_code == 303


async def test_five_wrong_codes_after_single_sign_on_lock_the_account(
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
    session: Session,
) -> None:
    staff, _secret = account
    staff_sso.next_claims = dict(VERIFIED)
    await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    statuses = [
        (await post_form(client, "/pro/connexion/oidc/code", {"totp": "000000"})).status_code
        for _ in range(5)
    ]
    assert statuses == [422, 422, 422, 422, 410]
    session.expire_all()
    locked = session.get_one(StaffUser, staff.id).locked_until
    assert locked is not None and locked > utcnow() + timedelta(minutes=14)


@pytest.mark.parametrize(
    ("claims", "direct"),
    [
        ({"acr": "eidas2"}, True),
        ({"acr": "https://proconnect.gouv.fr/assurance/self-asserted-2fa"}, True),
        ({"amr": ["pwd", "mfa"]}, True),
        ({"acr": "eidas1"}, False),
        ({"amr": ["pwd"]}, False),
        ({}, False),
    ],
)
async def test_which_assertions_count_as_two_factors(
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
    claims: dict[str, object],
    direct: bool,
) -> None:
    staff_sso.next_claims = {**VERIFIED, **claims}
    back = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert back.headers["location"] == ("/pro" if direct else "/pro/connexion/oidc/code")


async def test_the_accepted_values_are_configurable(
    app: FastAPI,
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
) -> None:
    app.state.settings.oidc_staff_mfa_acr = "niveau-maison-2fa"
    app.state.settings.oidc_staff_mfa_amr = ""
    staff_sso.next_claims = {**VERIFIED, "acr": "eidas2", "amr": ["mfa"]}
    asked = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert asked.headers["location"] == "/pro/connexion/oidc/code"
    staff_sso.next_claims = {**VERIFIED, "acr": "niveau-maison-2fa"}
    direct = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert direct.headers["location"] == "/pro"


async def test_an_account_without_totp_needs_the_providers_second_factor(
    app: FastAPI, client: httpx.AsyncClient, staff_sso: OidcProvider, session: Session
) -> None:
    staff = StaffUser(email="julien.m@example.org", full_name="Julien", role=StaffRole.REFERENT)
    session.add(staff)
    session.commit()
    staff_sso.next_claims = dict(VERIFIED)
    refused = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert refused.status_code == 403 and "n’a pas encore d’application" in refused.text
    assert (await client.get("/pro")).status_code == 303
    assert "no_second_factor" in _audit_reasons(session)


@pytest.mark.parametrize("verified", [None, False, "true", 1])
async def test_an_email_not_verified_by_the_provider_binds_no_account(
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
    session: Session,
    verified: object,
) -> None:
    staff, _secret = account
    claims: dict[str, object] = {"email": "julien.m@example.org", "acr": "eidas2"}
    if verified is not None:
        claims["email_verified"] = verified
    staff_sso.next_claims = claims
    refused = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert refused.status_code == 403
    assert "ne garantit pas votre adresse e-mail" in refused.text
    session.expire_all()
    assert session.get_one(StaffUser, staff.id).oidc_subject is None
    assert (await client.get("/pro")).status_code == 303
    assert "email_not_verified" in _audit_reasons(session)


async def test_a_bound_account_signs_on_by_its_subject(
    app: FastAPI,
    client: httpx.AsyncClient,
    staff_sso: OidcProvider,
    account: tuple[StaffUser, str],
    session: Session,
) -> None:
    staff, _secret = account
    staff.oidc_subject = "agent-42"
    session.commit()
    staff_sso.next_claims = {"amr": ["mfa"]}  # no email at all: the subject is enough
    back = await client.get(await provider_callback(client, "/pro/connexion/oidc"))
    assert back.headers["location"] == "/pro"
    token = client.cookies.get(app.state.settings.session_cookie_name)
    assert sessions.find_active(session, token) is not None


def test_one_state_finished_thirty_times_at_once_is_used_once(
    oidc_provider: OidcProvider,
) -> None:
    """A callback replayed in parallel (a double tap, or an attacker racing the youth) goes
    to the provider once: the flow is claimed by a conditional UPDATE, on PostgreSQL."""
    engine = create_database_engine(
        postgres_schema_url("oidc_races", needed_for="OIDC races on PostgreSQL"),
        pool_size=20,
        max_overflow=20,
    )
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    client = OidcClient(
        ProviderSettings(
            name="franceconnect",
            issuer=oidc_provider.issuer,
            client_id=oidc_provider.client_id,
            client_secret=oidc_provider.client_secret,
            redirect_uri="http://testserver/connexion/franceconnect/retour",
        )
    )
    oidc_provider.next_subject = "jeune-course"
    with factory.begin() as session:
        started = client.begin(session, purpose="sign_in")
    authorised = httpx.get(started.url)
    assert authorised.status_code == 302
    query = parse_qs(urlsplit(authorised.headers["location"]).query)
    barrier = threading.Barrier(30)

    def finish(_index: int) -> str:
        barrier.wait()
        with factory.begin() as session:
            result = client.finish(
                session,
                state=query["state"][0],
                code=query["code"][0],
                error=None,
                browser_state=started.state,
            )
            return "signed in" if result.claims else str(result.failure)

    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            outcomes = Counter(pool.map(finish, range(30)))
        assert outcomes == {"signed in": 1, str(OidcFailure.STATE): 29}
    finally:
        engine.dispose()
