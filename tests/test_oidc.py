"""OpenID Connect end to end over HTTP against a provider on loopback: FranceConnect for
youths, single sign-on for staff. The test plays the browser: it follows the redirects."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth.oidc import OidcClient, ProviderSettings
from paris_avenir.staff.models import StaffRole
from paris_avenir.youths.models import Youth
from tests.factories import create_staff, create_youth
from tests.helpers import post_form, provider_destination, sign_in_as
from tests.servers import OidcProvider


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
def franceconnect(app: FastAPI, oidc_provider: OidcProvider) -> OidcProvider:
    configure(app, oidc_provider, "franceconnect", "/connexion/franceconnect/retour")
    return oidc_provider


@pytest.fixture
def youth(session: Session) -> Youth:
    youth = create_youth(session, first_name="Tesfay", franceconnect_subject="fc-tesfay")
    session.commit()
    return youth


async def authorize(client: httpx.AsyncClient, start: str, *, post: bool = False) -> str:
    """Our redirect to the provider, the provider's redirect back: the callback URL."""
    ours = await (post_form(client, start) if post else client.get(start))
    authorize_url = provider_destination(ours)
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    async with httpx.AsyncClient() as browser:
        theirs = await browser.get(authorize_url)
    assert theirs.status_code == 302
    callback = urlsplit(theirs.headers["location"])
    return f"{callback.path}?{callback.query}"


async def test_franceconnect_signs_in_the_youth_linked_to_the_subject(
    client: httpx.AsyncClient, franceconnect: OidcProvider, youth: Youth
) -> None:
    franceconnect.next_subject = "fc-tesfay"
    callback = await authorize(client, "/connexion/franceconnect")
    response = await client.get(callback)
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace"
    assert "Bonjour Tesfay" in (await client.get("/mon-espace")).text


async def test_the_account_is_matched_on_the_subject_never_the_email(
    client: httpx.AsyncClient, franceconnect: OidcProvider, youth: Youth
) -> None:
    franceconnect.next_subject = "someone-else"
    franceconnect.next_claims = {"email": youth.email, "given_name": "Tesfay"}
    response = await client.get(await authorize(client, "/connexion/franceconnect"))
    assert response.status_code == 404
    assert "Aucun dossier n’est lié à ce compte FranceConnect" in response.text
    assert (await client.get("/mon-espace")).status_code == 303


async def test_a_wrong_state_is_refused(
    client: httpx.AsyncClient, franceconnect: OidcProvider, youth: Youth, session: Session
) -> None:
    franceconnect.next_subject = "fc-tesfay"
    callback = urlsplit(await authorize(client, "/connexion/franceconnect"))
    query = {key: values[0] for key, values in parse_qs(callback.query).items()}
    query["state"] = "forged-state"
    response = await client.get(f"{callback.path}?{urlencode(query)}")
    assert response.status_code == 400
    assert "La connexion a expiré ou a déjà été utilisée" in response.text
    assert franceconnect.token_requests == 0  # the code was never even exchanged
    assert (await client.get("/mon-espace")).status_code == 303
    assert session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "youth.sign_in_failed")
    ).one() == {"method": "franceconnect", "reason": "state"}


async def test_a_wrong_nonce_is_refused(
    client: httpx.AsyncClient, franceconnect: OidcProvider, youth: Youth
) -> None:
    franceconnect.next_subject = "fc-tesfay"
    franceconnect.tamper_nonce = True
    response = await client.get(await authorize(client, "/connexion/franceconnect"))
    assert response.status_code == 400 and "La connexion a été refusée" in response.text
    assert (await client.get("/mon-espace")).status_code == 303


async def test_an_id_token_signed_by_another_key_is_refused(
    client: httpx.AsyncClient, franceconnect: OidcProvider, youth: Youth
) -> None:
    franceconnect.next_subject = "fc-tesfay"
    franceconnect.sign_with_other_key = True
    response = await client.get(await authorize(client, "/connexion/franceconnect"))
    assert response.status_code == 400
    assert (await client.get("/mon-espace")).status_code == 303


async def test_a_replayed_callback_and_a_replayed_code_are_refused(
    client: httpx.AsyncClient, franceconnect: OidcProvider, youth: Youth
) -> None:
    franceconnect.next_subject = "fc-tesfay"
    callback = await authorize(client, "/connexion/franceconnect")
    assert (await client.get(callback)).status_code == 303
    await post_form(client, "/deconnexion")

    replayed = await client.get(callback)  # the same state a second time
    assert replayed.status_code == 400

    # The old code under a fresh, valid state: the provider refuses it (used once).
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    fresh = urlsplit(await authorize(client, "/connexion/franceconnect"))
    fresh_state = parse_qs(fresh.query)["state"][0]
    response = await client.get(
        f"{fresh.path}?{urlencode({'code': old_code, 'state': fresh_state})}"
    )
    assert response.status_code == 400 and "La connexion a été refusée" in response.text
    assert (await client.get("/mon-espace")).status_code == 303


async def test_a_cancelled_sign_in_is_explained(
    client: httpx.AsyncClient, franceconnect: OidcProvider, youth: Youth
) -> None:
    callback = urlsplit(await authorize(client, "/connexion/franceconnect"))
    state = parse_qs(callback.query)["state"][0]
    response = await client.get(
        f"{callback.path}?{urlencode({'error': 'access_denied', 'state': state})}"
    )
    assert response.status_code == 400 and "La connexion a été annulée" in response.text


async def test_a_signed_in_youth_links_franceconnect(
    app: FastAPI, client: httpx.AsyncClient, franceconnect: OidcProvider, session: Session
) -> None:
    youth = create_youth(session, first_name="Hawa")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    franceconnect.next_subject = "fc-hawa"
    response = await client.get(await authorize(client, "/mon-espace/franceconnect", post=True))
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace"
    session.refresh(youth)
    assert youth.franceconnect_subject == "fc-hawa"


async def test_staff_single_sign_on_binds_the_account_created_by_an_admin(
    app: FastAPI, client: httpx.AsyncClient, oidc_provider: OidcProvider, session: Session
) -> None:
    configure(app, oidc_provider, "staff", "/pro/connexion/oidc/retour")
    staff = create_staff(session, StaffRole.REFERENT, email="julien.m@example.org")
    session.commit()
    oidc_provider.next_subject = "agent-42"
    oidc_provider.next_claims = {
        "email": "julien.m@example.org",
        "email_verified": True,
        "acr": "eidas2",  # the provider asserts two factors (tests/test_oidc_security.py)
    }
    response = await client.get(await authorize(client, "/pro/connexion/oidc"))
    assert response.status_code == 303 and response.headers["location"] == "/pro"
    session.refresh(staff)
    assert staff.oidc_subject == "agent-42"
    assert (await client.get("/pro")).status_code == 200


async def test_staff_single_sign_on_without_an_account_is_refused(
    app: FastAPI, client: httpx.AsyncClient, oidc_provider: OidcProvider
) -> None:
    configure(app, oidc_provider, "staff", "/pro/connexion/oidc/retour")
    oidc_provider.next_subject = "stranger"
    oidc_provider.next_claims = {"email": "stranger@example.org"}
    response = await client.get(await authorize(client, "/pro/connexion/oidc"))
    assert response.status_code == 403
    assert (await client.get("/pro")).status_code == 303


async def test_linking_franceconnect_asks_for_a_fresh_sign_in(
    app: FastAPI, client: httpx.AsyncClient, franceconnect: OidcProvider, session: Session
) -> None:
    from datetime import timedelta

    from paris_avenir.auth.models import UserSession

    youth = create_youth(session, first_name="Idrissa")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    record = session.scalars(select(UserSession).where(UserSession.youth_id == youth.id)).one()
    record.authenticated_at -= timedelta(hours=2)  # signed in long ago on this phone
    session.commit()
    response = await post_form(client, "/mon-espace/franceconnect")
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion?suite=/mon-espace"
