"""FranceConnect and the City's single sign-on in Chromium, JavaScript on and off, against
panva's certified oidc-provider (npm) on loopback: its own sign-in page, its own sign-out
confirmation, its cookies on its own host (127.0.0.2). Nothing is stubbed on either side.

- FranceConnect-like provider: client_secret_post only, claims only in userinfo;
- the City's provider: client_secret_basic only, claims only in userinfo (JSON), and no
  second-factor assertion, so the platform asks for the account's TOTP code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select, update

from paris_avenir.app import create_app
from paris_avenir.auth.oidc import OidcClient
from paris_avenir.auth.staff_local import create_staff
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.demo import TEAM_NAME, load_demo_data
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole
from paris_avenir.youths.models import Youth
from tests.browser.conftest import (
    DemoYouth,
    LiveServer,
    _browser_tests_enabled,
    _server_engine,
    new_phone_context,
    sign_in_youth,
)
from tests.conftest import BACKENDS, postgres_schema_url
from tests.oidc_servers import (
    FRANCECONNECT_SCOPES,
    PROVIDER_LOGIN_PASSWORD,
    PanvaProvider,
    ProviderClient,
)
from tests.servers import PlatformServer, SmtpServer, free_port

pytestmark = pytest.mark.browser

SECRET = "a-client-secret-of-more-than-thirty-two-characters"
# One account per run (JavaScript on, off): a TOTP code works once.
AGENTS = {True: "agent-sso-js", False: "agent-sso-no-js"}
# Demo youth 5 signs in with FranceConnect; 6 and 7 link it (JavaScript on, off).
LINKED = DemoYouth(5)
LINKING = {True: DemoYouth(6), False: DemoYouth(7)}
DOWN_LINKING = {True: DemoYouth(8), False: DemoYouth(9)}


@dataclass
class SsoPlatform:
    live: LiveServer
    app: Any
    franceconnect: PanvaProvider
    city: PanvaProvider
    totp: dict[str, pyotp.TOTP]  # provider login -> the account's TOTP

    @property
    def url(self) -> str:
        return self.live.url


@pytest.fixture(scope="module", params=BACKENDS)
def sso(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SsoPlatform]:
    _browser_tests_enabled()
    directory = tmp_path_factory.mktemp(f"sso-{request.param}")
    # Skipped (no PostgreSQL) before the providers start: a skip after them would leave
    # both node processes running, since the teardown below is never reached.
    if request.param == "sqlite":
        engine = _server_engine("sqlite", directory)
    else:
        engine = create_database_engine(
            postgres_schema_url("browser_oidc", needed_for="PostgreSQL browser tests")
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    franceconnect = PanvaProvider(
        clients=[
            ProviderClient(
                "fc-client",
                SECRET,
                url + "/connexion/franceconnect/retour",
                url + "/connexion/franceconnect/deconnecte",
                "client_secret_post",
            )
        ],
        accounts={
            "fc-demo-5": {"given_name": LINKED.first_name, "family_name": "Demo"},
            "fc-demo-6": {"given_name": LINKING[True].first_name},
            "fc-demo-7": {"given_name": LINKING[False].first_name},
        },
        scopes=FRANCECONNECT_SCOPES,
        client_auth_methods=["client_secret_post"],
        acr_values=["eidas1"],
    ).start()
    city = PanvaProvider(
        clients=[
            ProviderClient(
                "city-client",
                SECRET,
                url + "/pro/connexion/oidc/retour",
                url + "/pro/connexion/oidc/deconnecte",
                "client_secret_basic",
            )
        ],
        accounts={
            login: {"email": f"{login}@example.org", "email_verified": True, "usual_name": "Sso"}
            for login in AGENTS.values()
        },
        client_auth_methods=["client_secret_basic"],
    ).start()
    upgrade_to_head(engine)
    smtp = SmtpServer()
    smtp.start()
    settings = Settings(
        env="dev",
        secret_key="browser-sso-secret-" + "x" * 32,
        base_url=url,
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url=smtp.url,
        franceconnect_issuer=franceconnect.issuer,
        franceconnect_client_id="fc-client",
        franceconnect_client_secret=SECRET,
        oidc_staff_issuer=city.issuer,
        oidc_staff_client_id="city-client",
        oidc_staff_client_secret=SECRET,
    )
    factory = make_session_factory(engine)
    with factory.begin() as session:
        load_demo_data(session, cipher=build_cipher(settings))
        session.execute(
            update(Youth)
            .where(Youth.phone == LINKED.phone)
            .values(franceconnect_subject="fc-demo-5")
        )
        totp = {}
        for login in AGENTS.values():
            created = create_staff(
                session,
                build_cipher(settings),
                email=f"{login}@example.org",
                full_name="Agent Sso",
                role=StaffRole.REFERENT,
                team_name=TEAM_NAME,
                password="mot de passe de demonstration",
            )
            totp[login] = pyotp.TOTP(pyotp.parse_uri(created.totp_uri).secret)
    app = create_app(settings, engine=engine)
    server = PlatformServer(app, port)
    server.start()
    yield SsoPlatform(
        live=LiveServer(
            url=url,
            sms_file=settings.sms_file,
            smtp=smtp,
            staff_accounts={},
            settings=settings,
            session_factory=factory,
        ),
        app=app,
        franceconnect=franceconnect,
        city=city,
        totp=totp,
    )
    server.stop()
    smtp.stop()
    franceconnect.close()
    city.close()
    engine.dispose()


def sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's own sign-in page (oidc-provider's development interaction)."""
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill(PROVIDER_LOGIN_PASSWORD)
    page.get_by_role("button", name="Sign-in").click()


def confirm_sign_out_at_provider(page: Any, provider: PanvaProvider) -> None:
    page.wait_for_url(provider.issuer + "/session/end**")
    page.get_by_role("button", name="Yes, sign me out").click()


def provider_asks_who_signs_in(page: Any, provider: PanvaProvider) -> bool:
    page.wait_for_url(provider.issuer + "/**")
    return bool(page.locator('input[name="login"]').is_visible())


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_franceconnect_sign_in_then_sign_out_ends_the_providers_session(
    sso: SsoPlatform, browser: Any, javascript: bool
) -> None:
    context = new_phone_context(browser, javascript=javascript)
    # French on this phone (the demo youth's profile says Dari).
    context.add_cookies([{"name": "langue", "value": "fr", "url": sso.url}])
    page = context.new_page()
    page.goto(sso.url + "/connexion")
    page.get_by_role("link", name="Se connecter avec FranceConnect").click()
    assert provider_asks_who_signs_in(page, sso.franceconnect)
    sign_in_at_provider(page, "fc-demo-5")
    page.get_by_role("heading", name=f"Bonjour {LINKED.first_name}").wait_for()
    assert page.url == sso.url + "/mon-espace"

    page.get_by_role("button", name="Se déconnecter").click()
    confirm_sign_out_at_provider(page, sso.franceconnect)
    page.get_by_text("Vous êtes déconnecté. À bientôt !").wait_for()
    assert page.url == sso.url + "/connexion?deconnecte=1"

    # The next person on this phone taps FranceConnect: the provider asks who they are.
    page.get_by_role("link", name="Se connecter avec FranceConnect").click()
    assert provider_asks_who_signs_in(page, sso.franceconnect)
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_youth_links_franceconnect_from_their_space(
    sso: SsoPlatform, browser: Any, javascript: bool
) -> None:
    youth = LINKING[javascript]
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    sign_in_youth(page, sso.live, youth)
    page.get_by_role("button", name="Lier FranceConnect").click()
    assert provider_asks_who_signs_in(page, sso.franceconnect)
    sign_in_at_provider(page, f"fc-demo-{youth.number}")
    page.get_by_text("Votre compte FranceConnect est lié.").wait_for()
    assert page.url == sso.url + "/mon-espace"
    with sso.live.session_factory() as session:
        subject = session.scalar(
            select(Youth.franceconnect_subject).where(Youth.phone == youth.phone)
        )
    assert subject == f"fc-demo-{youth.number}"
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_staff_single_sign_on_with_basic_auth_and_userinfo_then_sign_out(
    sso: SsoPlatform, browser: Any, javascript: bool
) -> None:
    context = browser.new_context(java_script_enabled=javascript, locale="fr-FR")
    page = context.new_page()
    page.goto(sso.url + "/pro/connexion")
    page.get_by_role("link", name="Se connecter avec le compte de la Ville").click()
    sign_in_at_provider(page, AGENTS[javascript])
    # The provider asserted no second factor: the platform's own code.
    page.get_by_label("Code de votre application d’authentification").fill(
        sso.totp[AGENTS[javascript]].now()
    )
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("heading", name="Mes jeunes").wait_for()
    assert ("POST", "/token", 200, "Basic") in sso.city.requests

    page.get_by_role("button", name="Se déconnecter").click()
    confirm_sign_out_at_provider(page, sso.city)
    page.get_by_text("Vous êtes déconnecté.").wait_for()
    assert page.url == sso.url + "/pro/connexion?deconnecte=1"
    page.get_by_role("link", name="Se connecter avec le compte de la Ville").click()
    assert provider_asks_who_signs_in(page, sso.city)
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_provider_that_is_down_leaves_the_other_ways_in(
    sso: SsoPlatform, browser: Any, javascript: bool
) -> None:
    gone = PanvaProvider(clients=[], accounts={}).start()
    gone.close()
    kept = dict(sso.app.state.oidc)
    for name in ("franceconnect", "staff"):
        sso.app.state.oidc[name] = OidcClient(replace(kept[name].settings, issuer=gone.issuer))
    try:
        context = new_phone_context(browser, javascript=javascript)
        page = context.new_page()
        page.goto(sso.url + "/connexion")
        page.get_by_role("link", name="Se connecter avec FranceConnect").click()
        alert = page.get_by_role("alert")
        alert.wait_for()
        assert "FranceConnect ne répond pas pour le moment" in alert.inner_text()
        assert page.url == sso.url + "/connexion/franceconnect"
        # The code form is right there, and the page is accessible at 360x640 (axe-core
        # is a script: it runs where scripts do).
        assert page.get_by_role("button", name="Recevoir un code").is_visible()
        if javascript:
            assert Axe().run(page).violations_count == 0

        # A signed-in youth who taps "Lier FranceConnect" is told, and goes back.
        sign_in_youth(page, sso.live, DOWN_LINKING[javascript])
        page.get_by_role("button", name="Lier FranceConnect").click()
        page.get_by_role("alert").wait_for()
        assert (
            "FranceConnect ne répond pas pour le moment" in page.get_by_role("alert").inner_text()
        )
        if javascript:
            assert Axe().run(page).violations_count == 0
        page.get_by_role("link", name="Retour à mon espace").click()
        page.get_by_text("Liez votre compte FranceConnect").wait_for()
        page.get_by_role("button", name="Se déconnecter").click()  # no provider: ours only
        page.get_by_text("Vous êtes déconnecté. À bientôt !").wait_for()

        page.goto(sso.url + "/pro/connexion")
        page.get_by_role("link", name="Se connecter avec le compte de la Ville").click()
        page.get_by_role("alert").wait_for()
        assert "Le compte de la Ville ne répond pas" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("Mot de passe").is_visible()
        context.close()
    finally:
        sso.app.state.oidc.update(kept)
