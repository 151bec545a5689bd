"""The chrome of every page: who is signed in shows in the header on public pages too, and
the emergency numbers are one line on signed-in pages, the whole block elsewhere."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.auth import sessions
from tests.factories import create_staff, create_youth
from tests.helpers import sign_in_as
from tests.querycount import CountQueries

WHOLE_BLOCK = 'id="titre-urgence"'
ONE_LINE = '<details class="emergency-line">'


def header(html: str) -> str:
    return html[html.index('<header class="site-header">') : html.index("</header>")]


def footer(html: str) -> str:
    return html[html.index('<footer class="site-footer">') : html.index("</footer>")]


async def test_a_signed_in_youth_reads_mon_espace_on_public_pages(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    token = sign_in_as(client, app, session, youth=create_youth(session))
    for path in ("/", "/connexion", "/cette-page-n-existe-pas"):
        top = header((await client.get(path)).text)
        assert 'href="/mon-espace"' in top and "Se déconnecter" in top, path
        assert 'href="/connexion"' not in top, path
    # The home page's own card leads back to the space too.
    home = (await client.get("/")).text
    assert "Ouvrir mon espace" in home and "Se connecter" not in home
    # Signed out, the same pages offer to sign in again.
    sessions.revoke(session, token)
    session.commit()
    top = header((await client.get("/")).text)
    assert 'href="/connexion"' in top and "Se déconnecter" not in top


async def test_a_signed_in_staff_member_reads_mes_jeunes_on_the_home_page(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    sign_in_as(client, app, session, staff=create_staff(session))
    top = header((await client.get("/")).text)
    assert 'href="/pro"' in top and 'href="/connexion"' not in top


async def test_the_header_costs_one_query_and_only_with_a_session_cookie(
    app: FastAPI, client: httpx.AsyncClient, session: Session, count_queries: CountQueries
) -> None:
    with count_queries() as anonymous:
        await client.get("/")
    assert anonymous.count == 0
    sign_in_as(client, app, session, youth=create_youth(session))
    with count_queries() as signed_in:
        await client.get("/")
    assert signed_in.count == 1


async def test_signed_in_pages_have_one_help_line_and_public_pages_the_whole_block(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    anonymous = (await client.get("/connexion")).text
    assert WHOLE_BLOCK in footer(anonymous) and ONE_LINE not in anonymous
    # The home page shows the block in its body: the footer does not repeat it.
    home = (await client.get("/")).text
    assert home.count(WHOLE_BLOCK) == 1 and WHOLE_BLOCK not in footer(home)

    sign_in_as(client, app, session, youth=create_youth(session))
    space = (await client.get("/mon-espace")).text
    assert WHOLE_BLOCK not in space
    line = footer(space)
    assert ONE_LINE in line and "<summary>Besoin d’aide tout de suite ?</summary>" in line
    for number in ("115", "3114", "17", "112", "3919"):
        assert f'href="tel:{number}"' in line
    # The check-in page (a link from an SMS) has the whole block, signed in or not.
    check_in = (await client.get("/point/un-lien-perime")).text
    assert footer(check_in).count(WHOLE_BLOCK) == 1 and ONE_LINE not in check_in
