"""The virus scanner: Debian's real clamd, started by these tests on a Unix socket of their
own, with a signature database that holds only the EICAR test file (no signature can be
downloaded here). EICAR is refused with a clear message; a scanner that does not answer
refuses every upload (fail closed), and the log says so without saying whose file it was."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.config import Settings
from paris_avenir.documents import service as documents
from paris_avenir.documents.clamav import ClamdScanner, ScannerError
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.documents.validation import RefusedFile, UploadUnavailable
from paris_avenir.youths.models import Youth
from tests.conftest import skip_or_fail
from tests.factories import PDF_BYTES, create_youth, jpeg_bytes
from tests.helpers import csrf_token, sign_in_as

# The EICAR test file (68 bytes), in two halves so that this file is not itself flagged.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclass
class Clamd:
    socket_path: Path
    started_in: float


def _pong(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(1)
            connection.connect(str(path))
            connection.sendall(b"zPING\0")
            return connection.recv(16) == b"PONG\0"
    except OSError:
        return False


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    executable = shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin")
    if executable is None:
        skip_or_fail("clamd is not installed (apt-get install clamav-daemon)")
    directory = tmp_path_factory.mktemp("clamd")
    database = directory / "signatures"
    database.mkdir()
    # A hash signature: MD5, size, name (clamd adds ".UNOFFICIAL" to a local signature).
    md5 = hashlib.md5(EICAR).hexdigest()  # noqa: S324 - ClamAV's .hdb format is MD5
    (database / "eicar.hdb").write_text(f"{md5}:{len(EICAR)}:Eicar-Test-Signature\n")
    socket_path = directory / "clamd.sock"
    config = directory / "clamd.conf"
    config.write_text(
        f"LocalSocket {socket_path}\n"
        f"DatabaseDirectory {database}\n"
        f"TemporaryDirectory {directory}\n"
        f"LogFile {directory / 'clamd.log'}\n"
        "Foreground yes\n"
        "StreamMaxLength 12M\n"
    )
    started = time.monotonic()
    process = subprocess.Popen(
        [str(executable), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not _pong(socket_path):
            if process.poll() is not None or time.monotonic() - started > 60:
                log = (directory / "clamd.log").read_text(errors="replace")
                pytest.fail(f"clamd did not start:\n{log}")
            time.sleep(0.02)
        started_in = time.monotonic() - started
        print(f"clamd answered {started_in:.3f} s after its start")
        yield Clamd(socket_path, started_in)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def settings(settings: Settings, clamd: Clamd) -> Settings:
    return settings.model_copy(update={"clamd_socket": str(clamd.socket_path)})


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session) -> Youth:
    youth = create_youth(session, first_name="Mariam", phone="+33639981234")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    return youth


async def upload(client: httpx.AsyncClient, content: bytes, filename: str) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(
        "/mon-espace/documents",
        data={"csrftoken": token, "type_document": "identite"},
        files={"fichier": (filename, content, "application/octet-stream")},
    )


def stored(session: Session, store: DocumentStore) -> tuple[int, int]:
    rows = session.scalar(select(func.count()).select_from(Document)) or 0
    return rows, store.count_files()


def test_clamd_starts_quickly_with_its_one_signature(clamd: Clamd) -> None:
    assert clamd.started_in < 30


def test_the_client_speaks_instream_to_the_real_clamd(clamd: Clamd) -> None:
    scanner = ClamdScanner(str(clamd.socket_path))
    assert scanner.scan(EICAR) == "Eicar-Test-Signature.UNOFFICIAL"
    assert scanner.scan(PDF_BYTES) is None
    # Several 64 KB chunks: the framing holds over a whole 10 MB upload.
    assert scanner.scan(bytes(range(256)) * 40_000) is None


async def test_eicar_is_refused_with_a_clear_message_and_nothing_is_stored(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING"):
        response = await upload(client, EICAR, "passeport-mariam.pdf")
    assert response.status_code == 422
    assert "L’antivirus a trouvé un virus dans ce fichier : il n’a pas été enregistré." in (
        response.text
    )
    assert stored(session, app.state.document_store) == (0, 0)
    assert "signature Eicar-Test-Signature" in caplog.text
    assert "mariam" not in caplog.text.lower() and "39981234" not in caplog.text


async def test_clean_files_pass_the_scanner(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    assert (await upload(client, PDF_BYTES, "rib.pdf")).status_code == 303
    assert (await upload(client, jpeg_bytes(), "carte.jpg")).status_code == 303
    assert stored(session, app.state.document_store) == (2, 2)


def test_every_upload_goes_through_the_scanner_counter_mode_included(
    app: FastAPI, session: Session
) -> None:
    # The staff counter (backoffice/counter.py) stores through the same service and store.
    with pytest.raises(RefusedFile, match="virus"):
        documents.add_document(
            session,
            app.state.document_store,
            youth_id=create_youth(session).id,
            kind=DocumentKind.IDENTITY,
            filename="eicar.com",
            content=EICAR,
        )


@pytest.fixture
def dead_socket(tmp_path: Path) -> Iterator[Path]:
    """A socket file nobody listens on any more, as after clamd crashed."""
    path = tmp_path / "crashed.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
    yield path


@pytest.mark.parametrize("where", ["missing", "crashed"])
async def test_an_unreachable_scanner_refuses_uploads_and_logs_it_without_personal_data(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    tmp_path: Path,
    dead_socket: Path,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    store: DocumentStore = app.state.document_store
    path = tmp_path / "nothing-here.sock" if where == "missing" else dead_socket
    store.scanner = ClamdScanner(str(path))
    with caplog.at_level("WARNING"):
        response = await upload(client, PDF_BYTES, "titre-de-sejour-mariam.pdf")
    assert response.status_code == 503
    assert "L’envoi de documents est momentanément impossible : l’antivirus ne répond pas." in (
        response.text
    )
    assert stored(session, store) == (0, 0)
    assert "virus scanner unavailable, upload refused" in caplog.text
    assert "mariam" not in caplog.text.lower() and "39981234" not in caplog.text
    assert str(youth.id) not in caplog.text


def test_a_scanner_that_never_answers_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        accepted: list[socket.socket] = []
        listener = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
        listener.start()
        started = time.monotonic()
        with pytest.raises(UploadUnavailable):
            ClamdScanner(str(path), timeout=0.5).check(PDF_BYTES)
        assert time.monotonic() - started < 5
        listener.join()
        for connection in accepted:
            connection.close()


def test_a_scanner_answer_without_a_verdict_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "confused.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()

        def answer() -> None:
            connection = server.accept()[0]
            connection.recv(65536)
            connection.sendall(b"INSTREAM size limit exceeded. ERROR\0")
            connection.close()

        replier = threading.Thread(target=answer)
        replier.start()
        with pytest.raises(ScannerError, match="no verdict"):
            ClamdScanner(str(path), timeout=5).scan(b"small")
        replier.join()
