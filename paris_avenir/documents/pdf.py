"""PDFs: opened with qpdf (through pikepdf), stripped of their active content, rewritten.

A PDF can run JavaScript, launch a program, submit a form to a server or carry other files;
a référent opening a youth's RIB must not run any of it. Every object of the file is
walked and each trigger (JavaScript, /Launch, /OpenAction, additional actions /AA, embedded
files, XFA forms, multimedia) is removed; links stay when they lead to a web page, a mail or
a phone number. The file stored is the one qpdf writes, never the bytes sent: whatever a
reader could find in the original (an appended update, a second cross-reference table,
objects qpdf does not reach) is gone. The result is opened again and checked; a file whose
active content is still there is refused. Streams are copied without being decoded, so a
compressed "bomb" inside a PDF costs nothing.
"""

from __future__ import annotations

import io
import logging

import pikepdf
from pikepdf import Array, Dictionary, Stream

from paris_avenir.documents.validation import DECODING, RefusedFile
from paris_avenir.web.i18n import gettext as _

logger = logging.getLogger(__name__)

ACTIVE_ACTIONS = {
    "/JavaScript",
    "/Launch",
    "/ImportData",
    "/SubmitForm",
    "/GoToR",
    "/GoToE",
    "/Rendition",
    "/Sound",
    "/Movie",
    "/RichMediaExecute",
    "/GoTo3DView",
}
ACTIVE_ANNOTATIONS = {"/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D"}
# Keys removed wherever they appear: triggers, scripts, embedded files, XFA forms.
ACTIVE_KEYS = {
    "/AA",
    "/OpenAction",
    "/JS",
    "/JavaScript",
    "/EmbeddedFiles",
    "/EF",
    "/AF",
    "/XFA",
    "/Collection",
    "/RichMediaContent",
}
SAFE_LINKS = ("http://", "https://", "mailto:", "tel:")


def _is_active(value: pikepdf.Object) -> bool:
    if not isinstance(value, Dictionary):
        return False
    action = value.get("/S")
    if action is not None and str(action) in ACTIVE_ACTIONS:
        return True
    if action is not None and str(action) == "/URI":
        target = value.get("/URI")
        return not (target is not None and str(target).strip().lower().startswith(SAFE_LINKS))
    subtype = value.get("/Subtype")
    return "/Rect" in value and subtype is not None and str(subtype) in ACTIVE_ANNOTATIONS


def _walk(container: pikepdf.Object, *, remove: bool) -> int:
    """Active elements found in container and the direct objects it holds (removed if asked).

    Indirect objects are walked on their own, once each, by active_content()."""
    found = 0
    children: list[pikepdf.Object] = []
    if isinstance(container, (Dictionary, Stream)):
        for key in list(container.keys()):
            value = container[key]
            if key in ACTIVE_KEYS or _is_active(value):
                found += 1
                if remove:
                    del container[key]
            elif isinstance(value, (Dictionary, Array)) and not value.is_indirect:
                children.append(value)
    elif isinstance(container, Array):
        for index in reversed(range(len(container))):
            value = container[index]
            if _is_active(value):
                found += 1
                if remove:
                    del container[index]
            elif isinstance(value, (Dictionary, Array)) and not value.is_indirect:
                children.append(value)
    return found + sum(_walk(child, remove=remove) for child in children)


def active_content(pdf: pikepdf.Pdf, *, remove: bool = False) -> int:
    found = _walk(pdf.trailer, remove=remove)
    for obj in pdf.objects:
        found += _walk(obj, remove=remove)
    return found


def _broken() -> RefusedFile:
    return RefusedFile(_("Ce PDF est incomplet ou abîmé. Enregistrez-le à nouveau."))


def sanitise(content: bytes) -> bytes:
    """The PDF rewritten without active content; RefusedFile (in French) otherwise."""
    with DECODING:
        try:
            with pikepdf.open(io.BytesIO(content)) as pdf:
                if len(pdf.pages) == 0:
                    raise _broken()
                removed = active_content(pdf, remove=True)
                output = io.BytesIO()
                # No encryption (a PDF that opens without a password keeps no restriction),
                # streams copied as they are.
                pdf.save(output, stream_decode_level=pikepdf.StreamDecodeLevel.none)
        except RefusedFile:
            raise
        except pikepdf.PasswordError:
            raise RefusedFile(
                _(
                    "Ce PDF est protégé par un mot de passe : la personne qui le lira ne "
                    "pourra pas l’ouvrir. Enregistrez-le sans mot de passe, ou prenez une "
                    "photo du document."
                )
            ) from None
        except (pikepdf.PdfError, pikepdf.ForeignObjectError, ValueError, RuntimeError):
            raise _broken() from None
        cleaned = output.getvalue()
        with pikepdf.open(io.BytesIO(cleaned)) as check:
            left = active_content(check)
    if left:
        logger.warning("pdf refused: %d active elements could not be removed", left)
        raise RefusedFile(
            _(
                "Ce PDF contient des éléments actifs (scripts, programmes ou fichiers joints) "
                "qui ne peuvent pas être retirés. Ouvrez-le, choisissez « Imprimer » puis "
                "« Enregistrer au format PDF », et envoyez ce nouveau fichier."
            )
        )
    if removed:
        logger.info("pdf sanitised: %d active elements removed", removed)
    return cleaned
