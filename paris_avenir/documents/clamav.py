"""The virus scanner: ClamAV's daemon (Debian's clamav-daemon), over its Unix socket.

The protocol is clamd(8)'s INSTREAM, null-terminated ("z" prefix): the command, then the
file in chunks each preceded by its length (4 bytes, big-endian), then a zero length; clamd
answers "stream: OK", "stream: <signature> FOUND" or "<reason> ERROR". It is small enough to
speak directly, tested against the real daemon (tests/test_clamav.py); the `clamd` package
has had no release since 2014.

Fail closed: when a scanner is configured and does not answer, uploads are refused.
"""

from __future__ import annotations

import logging
import socket
import struct

from paris_avenir.config import Settings
from paris_avenir.documents.validation import RefusedFile, UploadUnavailable
from paris_avenir.web.i18n import gettext as _

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
TIMEOUT_SECONDS = 30.0


class ScannerError(OSError):
    """clamd could not be reached or did not give a verdict."""


class ClamdScanner:
    def __init__(self, socket_path: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def scan(self, content: bytes) -> str | None:
        """The name of the signature found, or None for a clean file; ScannerError if clamd
        does not answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(self.timeout)
                connection.connect(self.socket_path)
                try:
                    connection.sendall(b"zINSTREAM\0")
                    for start in range(0, len(content), CHUNK_BYTES):
                        chunk = content[start : start + CHUNK_BYTES]
                        connection.sendall(struct.pack("!L", len(chunk)) + chunk)
                    connection.sendall(struct.pack("!L", 0))
                except BrokenPipeError:
                    pass  # clamd stopped reading (size limit): its answer says why
                reply = self._reply(connection)
        except OSError as error:
            raise ScannerError(f"clamd unreachable: {type(error).__name__}") from error
        if reply == "stream: OK":
            return None
        if reply.startswith("stream: ") and reply.endswith(" FOUND"):
            return reply.removeprefix("stream: ").removesuffix(" FOUND")
        raise ScannerError(f"clamd gave no verdict: {reply[:80]!r}")

    @staticmethod
    def _reply(connection: socket.socket) -> str:
        received = b""
        while not received.endswith(b"\0"):
            chunk = connection.recv(4096)
            if not chunk:
                break
            received += chunk
        return received.rstrip(b"\0").decode("utf-8", "replace").strip()

    def check(self, content: bytes) -> None:
        """RefusedFile when a virus is found, UploadUnavailable when clamd does not answer.
        The log says what happened, never whose file it was or its name."""
        try:
            signature = self.scan(content)
        except ScannerError as error:
            logger.error("virus scanner unavailable, upload refused: %s", error)
            raise UploadUnavailable(
                _(
                    "L’envoi de documents est momentanément impossible : l’antivirus ne "
                    "répond pas. Votre fichier n’a pas été enregistré. Réessayez dans "
                    "quelques minutes."
                )
            ) from None
        if signature is not None:
            logger.warning("virus scanner: upload refused, signature %s", signature)
            raise RefusedFile(
                _(
                    "L’antivirus a trouvé un virus dans ce fichier : il n’a pas été "
                    "enregistré. Prenez plutôt une photo du document avec votre téléphone."
                )
            )


def scanner_from_settings(settings: Settings) -> ClamdScanner | None:
    return ClamdScanner(settings.clamd_socket) if settings.clamd_socket else None
