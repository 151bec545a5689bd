"""SMS texts an admin may rewrite, per language. The built-in text (gettext) applies until
an admin saves another one; placeholders are checked, and the SMS segment count shown."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from paris_avenir.kit import settings_store
from paris_avenir.kit.errors import DomainError
from paris_avenir.messaging.sms_segments import SmsSize, measure
from paris_avenir.web.i18n import N_, gettext


@dataclass(frozen=True)
class TemplateSpec:
    key: str
    label: str
    placeholders: tuple[str, ...]
    example: dict[str, str]


SPECS: dict[str, TemplateSpec] = {
    spec.key: spec
    for spec in (
        TemplateSpec("sign_in_code", N_("Code de connexion (SMS)"), ("code",), {"code": "123456"}),
        TemplateSpec(
            "new_message",
            N_("Nouveau message du référent (SMS)"),
            ("link",),
            {"link": "https://paris-avenir.example.org/mon-espace/messages"},
        ),
        TemplateSpec(
            "request_update",
            N_("Du nouveau sur une demande (SMS)"),
            ("link",),
            {"link": "https://paris-avenir.example.org/mon-espace/demandes/1"},
        ),
        TemplateSpec(
            "invitation",
            N_("Invitation à ouvrir son espace (SMS)"),
            ("link",),
            {
                "link": "https://paris-avenir.example.org/lien/abcdefabcdefabcdefabcdefabcdefabcdefabcdefa"
            },
        ),
    )
}


# What an admin's SMS may not say either: it shows on the lock screen of a shared phone, and
# every youth receives it (tests/test_discreet_messages.py holds the full list, in every
# language; these are the words an admin could type).
_NOT_DISCREET = re.compile(
    r"(?<![\w-])(psy\w*|ASE|aide sociale à l[’']enfance|allocation|navigo)(?![\w-])"
    r"|\d[\d\s.,]*(€|euros?\b)|€",
    re.IGNORECASE,
)


class TemplateError(DomainError):
    """The message is for the admin."""


def _setting_key(key: str, language: str) -> str:
    return f"sms_template:{key}:{language}"


def override(session: Session, key: str, language: str) -> str | None:
    value = settings_store.load(session, _setting_key(key, language))
    return str(value) if value else None


def render_sms(session: Session, key: str, language: str, default: str, **values: str) -> str:
    """The admin's text for this language if there is one, else the built-in `default`."""
    return fill(override(session, key, language), default, **values)


def fill(custom: str | None, default: str, **values: str) -> str:
    """The admin's text `custom` (from override()) filled in, else the built-in `default`."""
    return custom.format_map(values) if custom else default


def placeholders_in(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name}


def size_of(key: str, text: str) -> SmsSize:
    return measure(text.format_map(SPECS[key].example))


def save(
    session: Session, key: str, language: str, text: str, *, by_id: Any, now: datetime | None = None
) -> SmsSize | None:
    spec = SPECS[key]
    text = text.strip()
    if not text:  # empty: back to the built-in text
        settings_store.save(session, _setting_key(key, language), None, by_id=by_id, now=now)
        return None
    try:
        found = placeholders_in(text)
    except ValueError:
        raise TemplateError(gettext("Accolade mal fermée : écrivez par exemple {link}.")) from None
    unknown, missing = found - set(spec.placeholders), set(spec.placeholders) - found
    if unknown:
        raise TemplateError(
            gettext("Inconnu dans le texte : %(names)s.", names=", ".join(sorted(unknown)))
        )
    if missing:
        raise TemplateError(
            gettext(
                "Le texte doit contenir : %(names)s.",
                names=", ".join("{" + name + "}" for name in sorted(missing)),
            )
        )
    if _NOT_DISCREET.search(text):
        raise TemplateError(
            gettext(
                "Un SMS s’affiche sur l’écran verrouillé : il ne dit ni « psychologue », ni "
                "« ASE », ni le nom d’une aide, ni un montant."
            )
        )
    size = size_of(key, text)
    if size.segments > 2:
        raise TemplateError(
            gettext("Trop long : %(segments)s SMS. Deux au plus.", segments=size.segments)
        )
    settings_store.save(session, _setting_key(key, language), text, by_id=by_id, now=now)
    return size
