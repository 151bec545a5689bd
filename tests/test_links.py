"""Sign-in links in messages: single use, short-lived, and never burnt by a link preview."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.auth import links
from paris_avenir.db import utcnow
from tests.factories import create_youth
from tests.helpers import post_form


async def test_a_link_signs_in_once_after_a_press(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, first_name="Selam")
    url = links.create_login_link(
        session, youth.id, purpose="invitation", base_url="http://testserver"
    )
    session.commit()
    path = url.removeprefix("http://testserver")

    for _ in range(2):  # a mail scanner opening the link does not use it up
        preview = await client.get(path)
        assert preview.status_code == 200 and "Entrer dans mon espace" in preview.text
    assert (await client.get("/mon-espace")).status_code == 303

    response = await post_form(client, path)
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace"
    assert "Bonjour Selam" in (await client.get("/mon-espace")).text

    await post_form(client, "/deconnexion")
    again = await post_form(client, path)
    assert again.status_code == 410 and "Ce lien ne marche plus" in again.text


def test_a_link_expires(session: Session) -> None:
    youth = create_youth(session)
    now = utcnow()
    url = links.create_login_link(
        session,
        youth.id,
        purpose="check_in",
        base_url="http://x",
        lifetime=timedelta(hours=1),
        now=now,
    )
    token = url.rsplit("/", 1)[1]
    assert links.consume_link(session, token, now=now + timedelta(hours=2)) is None
    assert links.consume_link(session, token, now=now + timedelta(minutes=30)) == youth


async def test_an_unknown_link_is_explained(client: httpx.AsyncClient) -> None:
    response = await client.get("/lien/nimporte-quoi")
    assert response.status_code == 410
    assert "Recevoir un code pour me connecter" in response.text
