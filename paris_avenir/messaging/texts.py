"""The words of outgoing messages, in the recipient's language.

SMS texts stay within one GSM-7 segment in French (no curly apostrophe, no ê or ç), which
tests check; emails carry the same words as plain text and HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from paris_avenir.messaging import sms_texts
from paris_avenir.web import i18n
from paris_avenir.web.templating import TEMPLATES_DIR


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


@cache
def _email_environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.raw_gettext, i18n.raw_ngettext, newstyle=True
    )
    return environment


def _render_email(
    template: str, subject: str, text: str, language: str, **context: object
) -> EmailContent:
    html = (
        _email_environment()
        .get_template(template)
        .render(
            lang=i18n.html_lang(language),
            direction=i18n.text_direction(language),
            subject=subject,
            **context,
        )
    )
    html = i18n.mark_untranslated(html)
    return EmailContent(subject=subject, text=text, html=html)


_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)»]")


def _segments(line: str) -> list[tuple[str, str]]:
    """A line as text and links, so that the template makes the links `<a>` elements."""
    segments: list[tuple[str, str]] = []
    position = 0
    for found in _URL.finditer(line):
        if found.start() > position:
            segments.append(("text", line[position : found.start()]))
        segments.append(("link", found.group(0)))
        position = found.end()
    if position < len(line):
        segments.append(("text", line[position:]))
    return segments


def html_from_text(
    subject: str, text: str, language: str, *, unsubscribe_url: str | None = None
) -> str:
    """The HTML alternative of an email written as plain text: the same words in the one
    small template (language and direction set, links as links)."""
    paragraphs = [
        [_segments(line) for line in block.split("\n")]
        for block in text.strip().split("\n\n")
        if block.strip()
    ]
    with i18n.using_locale(language) as locale:
        return _render_email(
            "emails/notice.html",
            subject,
            text,
            locale,
            paragraphs=paragraphs,
            unsubscribe_url=unsubscribe_url,
        ).html


def stop_line(url: str, language: str) -> str:
    """The visible stop link at the end of an outreach email's text."""
    with i18n.using_locale(language):
        return i18n.gettext("Ne plus recevoir ces messages : %(link)s", link=url)


def sign_in_code_sms(code: str, language: str) -> str:
    return sms_texts.render(sms_texts.SIGN_IN_CODE, language, code=code)


def sign_in_code_email(code: str, language: str) -> EmailContent:
    with i18n.using_locale(language) as locale:
        # No code in the subject: it would show on the lock screen of a shared phone.
        subject = i18n.gettext("Votre code pour vous connecter à Paris avenir")
        text = "\n\n".join(
            [
                i18n.gettext("Voici votre code pour vous connecter : %(code)s", code=code),
                i18n.gettext("Il marche pendant 10 minutes.")
                + "\n"
                + i18n.gettext("Ne le donnez à personne, même pas à votre référent."),
                i18n.gettext("Vous n’avez rien demandé ? Ignorez ce message."),
            ]
        )
        return _render_email("emails/sign_in_code.html", subject, text, locale, code=code)
