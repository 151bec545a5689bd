"""What an uploaded file really is, decided from its bytes, never from its name.

Accepted: PDF, JPEG, PNG, and iPhone HEIC/HEIF photos (converted to JPEG). Images are
decoded, then re-encoded without metadata: a phone photo carries the GPS position of the
youth's home, and a re-encoded image cannot smuggle anything else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from paris_avenir.web.i18n import gettext as _

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; beyond, a decompression bomb
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}

pillow_heif.register_heif_opener()
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class RefusedFile(ValueError):
    """The reason, in the youth's language, ready to show under the upload field."""


@dataclass(frozen=True)
class CheckedFile:
    content: bytes
    content_type: str
    extension: str


def _sniff(content: bytes) -> str | None:
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(content) >= 12 and content[4:8] == b"ftyp" and content[8:12] in HEIF_BRANDS:
        return "heif"
    return None


def _reencode(content: bytes, output_format: str) -> bytes:
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)  # keep the photo the right way up
            if output_format == "JPEG" and upright.mode not in {"RGB", "L"}:
                upright = upright.convert("RGB")
            buffer = io.BytesIO()
            upright.save(buffer, format=output_format, quality=85, optimize=True)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise RefusedFile(_("Cette image est abîmée ou illisible. Reprenez la photo.")) from None
    return buffer.getvalue()


def check_upload(content: bytes, *, size: int | None = None) -> CheckedFile:
    """Raises RefusedFile with a plain-French reason."""
    size = len(content) if size is None else size
    if size == 0:
        raise RefusedFile(_("Le fichier est vide. Choisissez un autre fichier."))
    if size > MAX_BYTES:
        megabytes = max(round(size / 1024 / 1024), 11)
        raise RefusedFile(
            _(
                "Le fichier est trop lourd (%(size)s Mo). Maximum : 10 Mo. "
                "Prenez une photo plutôt qu’un scan, ou envoyez une page à la fois.",
                size=megabytes,
            )
        )
    kind = _sniff(content)
    if kind == "pdf":
        if b"%%EOF" not in content[-2048:]:
            raise RefusedFile(_("Ce PDF est incomplet ou abîmé. Enregistrez-le à nouveau."))
        return CheckedFile(content, "application/pdf", "pdf")
    if kind == "png":
        return CheckedFile(_reencode(content, "PNG"), "image/png", "png")
    if kind in {"jpeg", "heif"}:
        return CheckedFile(_reencode(content, "JPEG"), "image/jpeg", "jpg")
    raise RefusedFile(
        _(
            "Ce fichier n’est ni un PDF, ni une photo (JPEG, PNG ou photo d’iPhone). "
            "Prenez une photo du document, ou envoyez-le en PDF."
        )
    )
