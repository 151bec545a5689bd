"""The admin reads the last night's retention run in words: files due, kept and why,
anonymised (or not, during the dry run), audit entries purged; and switches it on."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import delete

from paris_avenir.db import utcnow
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.kit import settings_store
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.retention import files
from paris_avenir.staff.models import TaskKind
from paris_avenir.youths.models import Youth
from tests.browser.conftest import LiveServer
from tests.factories import create_task, create_youth

pytestmark = pytest.mark.browser


def test_the_admin_sees_the_last_runs_counts_and_switches_it_on(
    live_server: LiveServer, browser: Any, admin_cookies: list[Any]
) -> None:
    now = utcnow()
    long_ago = now - timedelta(days=3 * 365)
    settings = live_server.settings
    store = DocumentStore(settings.upload_dir, build_cipher(settings))
    with live_server.session_factory.begin() as session:
        # The demo's youths are all followed: only these two are past 25 and quiet 3 years.
        assert files.anonymise_due(session, now=now, dry_run=True).due == 0
        youths = [
            create_youth(
                session,
                birth_date=date(1999, 5, 1),
                created_at=long_ago,
                last_activity_at=long_ago,
                last_name=f"Ancien{number}",
            )
            for number in range(2)
        ]
        create_task(session, youths[1], TaskKind.DELETION_REQUEST, now=long_ago)
        ids = [youth.id for youth in youths]
    try:
        files.nightly(live_server.session_factory, store)  # off by default: a dry run
        desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        desk.add_cookies(admin_cookies)
        page = desk.new_page()
        page.goto(live_server.url + "/pro/admin")
        page.get_by_role("link", name="Conservation des dossiers").click()
        last = page.locator("#dernier-passage")
        text = last.inner_text()
        assert "rien n’a été modifié" in text
        assert "aucun contact depuis plus de 2 ans) : 2" in text
        assert "Gardés parce qu’ils ont une tâche ouverte : 1" in text
        assert "Dossiers qui seraient anonymisés : 1" in text
        assert "Entrées du journal d’audit effacées" in text
        assert "Ancien" not in page.content()
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()

        page.get_by_role("checkbox", name="Anonymisation automatique des dossiers").check()
        page.get_by_role("button", name="Enregistrer").click()
        page.wait_for_url("**/pro/admin/conservation?enregistre=1")
        assert page.get_by_text("C’est enregistré.").is_visible()
        files.nightly(live_server.session_factory, store)
        page.reload()
        text = page.locator("#dernier-passage").inner_text()
        assert "Dossiers anonymisés : 1" in text and "rien n’a été modifié" not in text
        assert page.get_by_role(
            "checkbox", name="Anonymisation automatique des dossiers"
        ).is_checked()
        desk.close()
    finally:
        with live_server.session_factory.begin() as session:
            session.execute(delete(Youth).where(Youth.id.in_(ids)))
            files.set_automatic(session, False, by_id=None)
            settings_store.save(session, files.LAST_RUN_KEY, None, by_id=None)
