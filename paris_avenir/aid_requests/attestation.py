"""The "attestation d'attribution" of a granted aid: a PDF the youth hands to a landlord, a
bank or the CAF, and the code on it that /verifier/{code} confirms.

The PDF is in French whatever the youth's language (it is read by French institutions) and
says who, what, how much, from when to when, the request's reference and a verification
code. The code is made at the first download and kept on the request: every copy carries
the same one. It is 12 characters of Crockford's base32 (60 random bits: a page that
answers for a valid code cannot be walked through), printed in groups of four; what a
person types is read leniently (lower case, spaces, dashes, O for 0, I or L for 1).

The verification page confirms what the paper says without saying more: the aid, the
amount, the dates, the reference and the holder's first name with the initial of the last
name; never the birth date nor anything of the file. It answers 404 for a code that was
never made, and for a grant that no longer holds (a request no longer granted, an
anonymised file: the code is erased with the file).
"""

from __future__ import annotations

import io
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from xml.sax.saxutils import escape

from babel import dates as babel_dates
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import AidRequest
from paris_avenir.aid_requests.service import GRANTED_STATUSES, Granted, granted_summary
from paris_avenir.kit.dates import paris_day
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.i18n import using_locale
from paris_avenir.youths.models import Youth

# Crockford's base32: no I, L, O nor U, which read as 1, 1, 0 or a word.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12
# What a person may type for a letter the alphabet leaves out.
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
DOCUMENT_LOCALE = "fr"


def normalise(typed: str) -> str | None:
    """The code as stored, from what a person typed or a link carried; None if it cannot
    be one."""
    code = "".join(typed.split()).replace("-", "").upper().translate(_LOOKALIKES)
    if len(code) != CODE_LENGTH or any(character not in ALPHABET for character in code):
        return None
    return code


def shown(code: str) -> str:
    """ "7K2M-9QXD-4RTB": groups of four, easier to read out and to type."""
    return "-".join(code[start : start + 4] for start in range(0, len(code), 4))


def code_for(session: Session, request: AidRequest) -> str:
    """The request's code, made on first use. Two first downloads at once make one code:
    the UPDATE only writes where none is set, and both read back the one that stayed."""
    if request.attestation_code is None:
        made = "".join(secrets.choice(ALPHABET) for _position in range(CODE_LENGTH))
        session.execute(
            update(AidRequest)
            .where(AidRequest.id == request.id, AidRequest.attestation_code.is_(None))
            .values(attestation_code=made)
            .execution_options(synchronize_session=False)
        )
        stored = session.scalar(
            select(AidRequest.attestation_code).where(AidRequest.id == request.id)
        )
        assert stored is not None
        request.attestation_code = stored
        session.commit()  # the code is on paper from now on: it must not be rolled back
    return request.attestation_code


@dataclass(frozen=True)
class Attested:
    """What an attestation states, in French."""

    holder: str  # "Zabiullah SAFI"
    born_on: date
    granted: Granted
    decided_on: date | None
    reference: str
    code: str


def attested(session: Session, request: AidRequest, youth: Youth) -> Attested | None:
    """What the attestation of this request says, if it is granted; else None."""
    if request.status not in GRANTED_STATUSES or youth.anonymised_at is not None:
        return None
    with using_locale(DOCUMENT_LOCALE):
        granted = granted_summary(request)
    assert granted is not None
    return Attested(
        holder=f"{youth.first_name} {youth.last_name.upper()}",
        born_on=youth.birth_date,
        granted=granted,
        decided_on=paris_day(request.decided_at) if request.decided_at else None,
        reference=request.reference,
        code=code_for(session, request),
    )


@dataclass(frozen=True)
class Attestable:
    """A grant of the youth's that has an attestation: a line of their vault."""

    request_id: str
    aid_name: str
    reference: str


def attestable(session: Session, youth_id: uuid.UUID) -> list[Attestable]:
    """The youth's granted requests, latest decision first."""
    requests = session.scalars(
        select(AidRequest)
        .where(AidRequest.youth_id == youth_id, AidRequest.status.in_(GRANTED_STATUSES))
        .order_by(AidRequest.decided_at.desc())
    )
    return [
        Attestable(str(request.id), catalogue.kind(request.aid_code).name, request.reference)
        for request in requests
    ]


@dataclass(frozen=True)
class Verified:
    """What /verifier/{code} may say of a grant: the paper's facts, not the file's."""

    holder: str  # "Zabiullah S."
    granted: Granted
    reference: str


def verify(session: Session, typed: str) -> Verified | None:
    code = normalise(typed)
    if code is None:
        return None
    row = session.execute(
        select(AidRequest, Youth.first_name, Youth.last_name, Youth.anonymised_at)
        .join(Youth, Youth.id == AidRequest.youth_id)
        .where(AidRequest.attestation_code == code)
    ).one_or_none()
    if row is None:
        return None
    request, first_name, last_name, anonymised_at = row
    granted = granted_summary(request)
    if granted is None or anonymised_at is not None:
        return None
    return Verified(f"{first_name} {last_name[:1].upper()}.", granted, request.reference)


def _printable(text: str) -> str:
    """The PDF's fonts (the standard Helvetica every reader has) hold Windows-1252: a
    narrow no-break space becomes a no-break one, and a letter outside it loses its accent
    ("ğ" → "g") rather than print as a box."""
    text = text.replace("\u202f", "\u00a0")
    kept = []
    for character in text:
        try:
            character.encode("cp1252")
            kept.append(character)
        except UnicodeEncodeError:
            bare = unicodedata.normalize("NFKD", character).encode("cp1252", "ignore")
            kept.append(bare.decode("cp1252") or "?")
    return "".join(kept)


def _long_date(day: date) -> str:
    return babel_dates.format_date(day, "d MMMM y", locale=DOCUMENT_LOCALE)


def render_pdf(facts: Attested, *, base_url: str, issued_at: datetime) -> bytes:
    """The attestation as a one-page A4 PDF."""
    with using_locale(DOCUMENT_LOCALE):
        return _draw(facts, base_url=base_url, issued_on=paris_day(issued_at))


def _draw(facts: Attested, *, base_url: str, issued_on: date) -> bytes:
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=11, leading=15)
    small = ParagraphStyle("small", parent=body, fontSize=9, leading=12, textColor=colors.grey)
    title = ParagraphStyle("title", parent=styles["Title"], fontSize=18, leading=22)
    link = f"{base_url}/verifier/{shown(facts.code)}"
    granted = facts.granted

    def paragraph(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(_printable(text)), style)

    rows = [[_("Aide"), granted.aid_name]]
    if granted.amount:
        rows.append([_("Montant"), granted.amount])
    if granted.starts_on and granted.ends_on:
        period = _(
            "du %(start)s au %(end)s",
            start=_long_date(granted.starts_on),
            end=_long_date(granted.ends_on),
        )
        rows.append([_("Période"), period])
    elif granted.starts_on:
        rows.append([_("Depuis le"), _long_date(granted.starts_on)])
    if facts.decided_on:
        rows.append([_("Décision du"), _long_date(facts.decided_on)])
    rows.append([_("Référence"), facts.reference])
    table = Table(
        [[paragraph(label), paragraph(value)] for label, value in rows],
        colWidths=[45 * mm, 115 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
            ]
        )
    )
    qr = QrCodeWidget(link)
    left, bottom, right, top = qr.getBounds()
    size = 30 * mm
    drawing = Drawing(
        size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0]
    )
    drawing.add(qr)
    verification = Table(
        [
            [
                drawing,
                [
                    paragraph(_("Code de vérification : %(code)s", code=shown(facts.code))),
                    paragraph(
                        _(
                            "Pour vérifier cette attestation, ouvrez %(link)s ou scannez le "
                            "code ci-contre. La page confirme l’aide, le montant et les dates, "
                            "sans rien dire d’autre.",
                            link=link,
                        ),
                        small,
                    ),
                ],
            ]
        ],
        colWidths=[size + 6 * mm, 124 * mm],
    )
    verification.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story = [
        paragraph(_("Ville de Paris — Paris avenir, l’accompagnement des jeunes de l’ASE"), small),
        Spacer(1, 8 * mm),
        paragraph(_("Attestation d’attribution"), title),
        Spacer(1, 6 * mm),
        paragraph(
            _(
                "La Ville de Paris atteste que %(holder)s, né(e) le %(born)s, bénéficie de "
                "l’aide suivante :",
                holder=facts.holder,
                born=_long_date(facts.born_on),
            )
        ),
        Spacer(1, 4 * mm),
        table,
        Spacer(1, 8 * mm),
        paragraph(_("Attestation délivrée le %(date)s.", date=_long_date(issued_on))),
        Spacer(1, 10 * mm),
        verification,
    ]
    output = io.BytesIO()
    document = SimpleDocTemplate(
        output,
        pagesize=A4,
        title=_("Attestation d’attribution"),
        author=_("Ville de Paris — Paris avenir"),
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=20 * mm,
        bottomMargin=20 * mm,
    )
    document.build(story)
    return output.getvalue()
