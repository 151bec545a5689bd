"""The gettext catalogs a translator edits: every text a youth can see has a translation
in every language, with the same placeholders and all the plural forms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from paris_avenir.config import PROJECT_ROOT
from paris_avenir.web import i18n

TEMPLATES = PROJECT_ROOT / "templates"
# Pages only staff see stay in French (the City's working language).
STAFF_ONLY_TEMPLATES = (
    "staff/",
    "stats/",
    "appointments/agenda.html",
    "appointments/availability.html",
    "appointments/feed.html",
    "auth/staff_sign_in.html",
)
# Python modules whose texts reach youths: pages, rights, requests, SMS and emails.
YOUTH_FACING_MODULES = (
    "aid_requests/kinds",
    "aid_requests/catalogue.py",
    "aid_requests/instruction.py",
    "aid_requests/national_rights.py",
    "aid_requests/notices.py",
    "aid_requests/routes.py",
    "aid_requests/service.py",
    "appointments/notices.py",
    "appointments/routes.py",
    "appointments/service.py",
    "audit/service.py",
    "auth/codes.py",
    "auth/contact_change.py",
    "auth/routes.py",
    "auth/sign_in.py",
    "documents",
    "messaging/fallback.py",
    "messaging/notifications.py",
    "messaging/notices.py",
    "messaging/service.py",
    "messaging/sms_texts.py",
    "messaging/texts.py",
    "outreach/engine.py",
    "outreach/notices.py",
    "outreach/papers.py",
    "outreach/routes.py",
    "web",
    "privacy/deletion.py",
    "privacy/export.py",
    "staff/accesses.py",
    "staff/notices.py",
    "youths/routes.py",
    "youths/service.py",
)
TRANSLATED_LANGUAGES = [code for code, _name in i18n.LANGUAGES if code != i18n.SOURCE_LOCALE]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "lazy_gettext": None}


def youth_facing_templates() -> list[Path]:
    return [
        path
        for path in sorted(TEMPLATES.rglob("*.html"))
        if not str(path.relative_to(TEMPLATES)).startswith(STAFF_ONLY_TEMPLATES)
    ]


def youth_facing_modules() -> list[Path]:
    package = PROJECT_ROOT / "paris_avenir"
    found: list[Path] = []
    for entry in YOUTH_FACING_MODULES:
        path = package / entry
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def messages_in(path: Path, method: str) -> Iterator[str | tuple[str, ...]]:
    options = {"trimmed": "false"} if method == "jinja2" else {}
    for _line, message, _comments, _context in extract_from_file(
        method, str(path), keywords=KEYWORDS, options=options
    ):
        yield message


def youth_facing_messages() -> set[str | tuple[str, ...]]:
    messages: set[str | tuple[str, ...]] = set()
    for path in youth_facing_templates():
        messages.update(messages_in(path, "jinja2"))
    for path in youth_facing_modules():
        messages.update(messages_in(path, "python"))
    return {message for message in messages if message}


def load(language: str) -> Catalog:
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po_file:
        return read_po(po_file, locale=language)


def test_the_scan_finds_the_youth_texts_and_leaves_staff_pages_out() -> None:
    messages = youth_facing_messages()
    assert "Mes demandes" in messages  # a youth template
    assert "Aide d’urgence" in messages  # an aid of the catalogue (Python)
    assert any(isinstance(message, tuple) for message in messages)  # a plural
    assert "Demandes à instruire" not in messages  # a staff page


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_every_youth_facing_text_is_translated(language: str) -> None:
    catalog = load(language)
    plural_count = catalog.num_plurals
    missing = []
    for message in sorted(youth_facing_messages(), key=str):
        key = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(key)
        if entry is None or entry.fuzzy:
            missing.append(key)
            continue
        if isinstance(message, tuple):
            forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            if len(forms) != plural_count or not all(forms):
                missing.append(key)
        elif not entry.string:
            missing.append(key)
    assert not missing, f"{language}: {len(missing)} texts to translate, first: {missing[:5]}"


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    """A translation that drops %(link)s or renames %(amount)s would break the page."""
    problems = [
        (message.id, [str(error) for error in errors]) for message, errors in load(language).check()
    ]
    assert not problems, problems[:5]


def test_a_language_without_catalog_entry_falls_back_to_french_marked_as_such() -> None:
    with i18n.using_locale("ar"):
        text = i18n.raw_gettext("Une phrase que personne n’a traduite")
    html = i18n.mark_untranslated(f'<p>{text}</p><input placeholder="{text}"><title>{text}</title>')
    assert '<p><span lang="fr" dir="ltr">Une phrase que personne n’a traduite</span></p>' in html
    assert 'placeholder="Une phrase que personne n’a traduite"' in html
    assert "<title>Une phrase que personne n’a traduite</title>" in html
