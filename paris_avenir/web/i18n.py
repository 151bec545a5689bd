"""Translations: French is the source language; catalogs are gettext .po files.

The current locale lives in a context variable set once per request, so templates and
service code call the same `gettext` without passing the request around. Catalogs are
compiled in memory from the .po files at first use: no binary .mo file to forget to build.
"""

from __future__ import annotations

import gettext as gettext_module
import re
from contextvars import ContextVar
from functools import cache, lru_cache
from io import BytesIO
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy

from paris_avenir.config import PROJECT_ROOT

LOCALE_DIR = PROJECT_ROOT / "paris_avenir" / "locale"
SOURCE_LOCALE = "fr"

# The languages of the youths' space, each in its own name so that anyone finds theirs.
# Codes are Babel's (fa_AF is Dari); each has a catalog in LOCALE_DIR.
LANGUAGES: tuple[tuple[str, str], ...] = (
    ("fr", "Français"),
    ("en", "English"),
    ("ar", "العربية"),
    ("fa_AF", "دری"),
    ("ps", "پښتو"),
    ("ti", "ትግርኛ"),
)

# A text shown in French because its translation is missing is wrapped in these two
# private-use characters by the template gettext; `mark_untranslated` then turns them into
# <span lang="fr" dir="ltr"> so screen readers and the bidi algorithm treat it as French.
_FALLBACK_START = "\ue000"
_FALLBACK_END = "\ue001"

_current_locale: ContextVar[str] = ContextVar("current_locale", default=SOURCE_LOCALE)


@cache
def available_locales() -> list[str]:
    """The source language first, then every locale that has a catalog."""
    found = sorted(path.parent.parent.name for path in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po"))
    return [SOURCE_LOCALE, *(code for code in found if code != SOURCE_LOCALE)]


@cache
def translations_for(locale_code: str) -> gettext_module.NullTranslations:
    po_path = LOCALE_DIR / locale_code / "LC_MESSAGES" / "messages.po"
    if locale_code == SOURCE_LOCALE or not po_path.exists():
        return gettext_module.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale_code)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def set_locale(locale_code: str) -> None:
    _current_locale.set(locale_code)


def get_locale() -> str:
    return _current_locale.get()


@lru_cache(maxsize=64)  # every page asks; Babel parses the locale each time
def text_direction(locale_code: str) -> str:
    return Locale.parse(locale_code).text_direction  # "ltr" or "rtl"


def gettext(message: str, **variables: Any) -> str:
    text = translations_for(get_locale()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations_for(get_locale()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def lazy_gettext(message: str) -> LazyProxy:
    """For module-level texts (labels of a catalogue), translated when displayed."""
    return LazyProxy(gettext, message, enable_cache=False)


def negotiate_locale(cookie_value: str | None, accept_language: str | None) -> str:
    """The explicit choice (cookie) wins, then the browser's languages, then French."""
    available = available_locales()
    if cookie_value in available:
        return cookie_value
    if accept_language:
        preferred = []
        for part in accept_language.split(","):
            tag, _, quality = part.strip().partition(";q=")
            try:
                weight = float(quality) if quality else 1.0
            except ValueError:
                continue
            preferred.append((weight, tag.strip()))
        for _weight, tag in sorted(preferred, key=lambda item: -item[0]):
            negotiated = Locale.negotiate([tag.replace("-", "_")], available, sep="_")
            if negotiated:
                return str(negotiated)
    return SOURCE_LOCALE


def is_offered(locale_code: str | None) -> bool:
    """One of the languages a youth can pick."""
    return locale_code in dict(LANGUAGES)


def is_back_office(path: str) -> bool:
    """The back office (/pro) is written for the City's staff, in French only."""
    return path == "/pro" or path.startswith("/pro/")


def html_lang(locale_code: str) -> str:
    """BCP 47 tag for lang attributes: fa_AF → fa-AF."""
    return locale_code.replace("_", "-")


def is_translated(message: str, locale_code: str | None = None) -> bool:
    """Whether the catalog of that language (the current one by default) has this text."""
    locale_code = locale_code or get_locale()
    if locale_code == SOURCE_LOCALE:
        return True
    catalog: dict[Any, str] = getattr(translations_for(locale_code), "_catalog", {})
    return bool(catalog.get(message) or catalog.get((message, 0)))


def raw_gettext(message: str) -> str:
    """Translation for templates (Jinja's new-style gettext formats by itself); a missing
    translation comes back in French between the fallback marks."""
    text = translations_for(get_locale()).gettext(message)
    if message and not is_translated(message):
        return _FALLBACK_START + text + _FALLBACK_END
    return text


def raw_ngettext(singular: str, plural: str, n: int) -> str:
    text = translations_for(get_locale()).ngettext(singular, plural, n)
    if not is_translated(singular):
        return _FALLBACK_START + text + _FALLBACK_END
    return text


# Elements whose content is text only (a <span> would show as such) and tags themselves:
# there the fallback marks are dropped, the text stays in French.
_MARKUP_TOKENS = re.compile(r"(<[^>]*>|\ue000|\ue001)")
_TEXT_ONLY_ELEMENTS = ("title", "option", "textarea", "script", "style")


def mark_untranslated(html: str) -> str:
    if _FALLBACK_START not in html:
        return html
    parts: list[str] = []
    text_only_until: str | None = None
    for token in _MARKUP_TOKENS.split(html):
        if token in (_FALLBACK_START, _FALLBACK_END):
            if text_only_until is None:
                opening = token == _FALLBACK_START
                parts.append('<span lang="fr" dir="ltr">' if opening else "</span>")
            continue
        if token.startswith("<"):
            token = token.replace(_FALLBACK_START, "").replace(_FALLBACK_END, "")
            name = token[1:].split(None, 1)[0].rstrip(">").lower() if len(token) > 2 else ""
            if text_only_until is None and name in _TEXT_ONLY_ELEMENTS:
                text_only_until = "/" + name
            elif text_only_until is not None and name == text_only_until:
                text_only_until = None
        parts.append(token)
    return "".join(parts)


def N_(message: str) -> str:
    """Marks a text for extraction; it is translated later, where it is displayed."""
    return message


class using_locale:
    """Renders texts in another language (a message for a youth), then restores the caller's."""

    def __init__(self, locale_code: str) -> None:
        self.locale_code = locale_code if locale_code in available_locales() else SOURCE_LOCALE
        self._token: Any = None

    def __enter__(self) -> str:
        self._token = _current_locale.set(self.locale_code)
        return self.locale_code

    def __exit__(self, *_exc: object) -> None:
        _current_locale.reset(self._token)
