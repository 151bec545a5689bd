"""What an uploaded file really is, decided from its bytes, never from its name.

Accepted: PDF, JPEG, PNG, and iPhone HEIC/HEIF photos (converted to JPEG). Images are
decoded, then re-encoded without metadata: a phone photo carries the GPS position of the
youth's home, and a re-encoded image cannot smuggle anything else. Before any decoding, the
image's size is read from its header and refused above MAX_PIXELS: a decompression bomb
(a 200 KB PNG that decodes to 100 million pixels) costs a few kilobytes, not gigabytes.
PDFs are rewritten without their active content (see pdf.py). When a virus scanner is
configured, every file is scanned first, as it was sent.
"""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import pi_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from paris_avenir.kit.errors import DomainError
from paris_avenir.web.i18n import gettext as _

if TYPE_CHECKING:
    from paris_avenir.documents.clamav import ClamdScanner

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; beyond, a decompression bomb
OPTIMISED_PIXELS = 12_000_000
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
PIL_FORMATS = {"jpeg": ["JPEG"], "png": ["PNG"], "heif": ["HEIF"]}
# Decoding is the costly part (memory and CPU): two at a time, as many as the cores, so that
# ten large photos sent at once queue up instead of filling the memory together.
DECODING = threading.BoundedSemaphore(2)

pi_heif.register_heif_opener()
# Pillow's own guard (a warning above, an error above twice this) backs up the check below.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class RefusedFile(DomainError):
    """The reason, in the youth's language, ready to show under the upload field (422, as
    every DomainError)."""


class UploadUnavailable(RefusedFile):
    """Nothing wrong with the file: the platform cannot take it now (antivirus unreachable,
    disk full). The youth is told to try again later."""

    status_code: ClassVar[int] = 503


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


def _boxes(data: bytes, start: int, end: int, wanted: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of the content of each ISO BMFF box of type `wanted` in data[start:end]."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1 and position + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            return  # damaged: the decoder refuses it later, without this count
        if kind == wanted:
            yield position + header, position + size
        position += size


def heif_declared_pixels(content: bytes) -> int:
    """The largest image a HEIF file declares (its `ispe` properties), read from the header.

    Pillow reports the size after the "clean aperture" crop, but the decoder allocates the
    coded size: a bomb could declare a 100-megapixel image cropped to 32 × 24 pixels.
    """
    largest = 0
    for meta_start, meta_end in _boxes(content, 0, len(content), b"meta"):
        # meta is a "full box": 4 bytes of version and flags before its children.
        for iprp in _boxes(content, meta_start + 4, meta_end, b"iprp"):
            for ipco in _boxes(content, *iprp, b"ipco"):
                for ispe_start, ispe_end in _boxes(content, *ipco, b"ispe"):
                    if ispe_end - ispe_start >= 12:
                        width, height = struct.unpack_from(">II", content, ispe_start + 4)
                        largest = max(largest, width * height)
    return largest


def _too_many_pixels() -> RefusedFile:
    return RefusedFile(
        _(
            "Cette image est trop grande : plus de %(maximum)s millions de pixels. Reprenez la "
            "photo en qualité normale (pas en « haute résolution »), ou faites une capture "
            "d’écran de l’image et envoyez-la.",
            maximum=MAX_PIXELS // 1_000_000,
        )
    )


def _damaged_image() -> RefusedFile:
    return RefusedFile(_("Cette image est abîmée ou illisible. Reprenez la photo."))


def _reencode(content: bytes, kind: str, output_format: str) -> bytes:
    declared = heif_declared_pixels(content) if kind == "heif" else 0
    if kind == "heif" and declared == 0:
        raise _damaged_image()  # every HEIF image declares its size
    if declared > MAX_PIXELS:
        raise _too_many_pixels()
    try:
        # Image.open reads the header only; nothing is decoded before load().
        with Image.open(io.BytesIO(content), formats=PIL_FORMATS[kind]) as image:
            if image.width * image.height > MAX_PIXELS:
                raise _too_many_pixels()
            with DECODING:
                image.load()
                ImageOps.exif_transpose(image, in_place=True)  # the photo the right way up
                upright: Image.Image = image
                if output_format == "JPEG" and upright.mode not in {"RGB", "L"}:
                    upright = upright.convert("RGB")
                buffer = io.BytesIO()
                # Optimising holds the whole image's coefficients once more (+270 MB at 40
                # megapixels): only for photos up to the usual 12 megapixels.
                optimize = upright.width * upright.height <= OPTIMISED_PIXELS
                upright.save(buffer, format=output_format, quality=85, optimize=optimize)
    except RefusedFile:
        raise
    except Image.DecompressionBombError:  # Pillow's own guard, at twice the limit
        raise _too_many_pixels() from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise _damaged_image() from None
    return buffer.getvalue()


def check_upload(
    content: bytes, *, size: int | None = None, scanner: ClamdScanner | None = None
) -> CheckedFile:
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
    if scanner is not None:
        scanner.check(content)
    kind = _sniff(content)
    if kind == "pdf":
        from paris_avenir.documents.pdf import sanitise

        return CheckedFile(sanitise(content), "application/pdf", "pdf")
    if kind == "png":
        return CheckedFile(_reencode(content, kind, "PNG"), "image/png", "png")
    if kind in {"jpeg", "heif"}:
        return CheckedFile(_reencode(content, kind, "JPEG"), "image/jpeg", "jpg")
    raise RefusedFile(
        _(
            "Ce fichier n’est ni un PDF, ni une photo (JPEG, PNG ou photo d’iPhone). "
            "Prenez une photo du document, ou envoyez-le en PDF."
        )
    )
