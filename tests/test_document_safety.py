"""Documents under attack: decompression bombs refused from their header, PDFs stripped of
their active content, a file and its row that change together (a failed commit leaves
neither an orphan file nor a dangling row), a full disk that leaves nothing behind."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pi_heif.as_plugin as pi_heif_plugin
import pikepdf
import pytest
from fastapi import FastAPI
from pikepdf import Array, Dictionary, Name, String
from PIL import Image, ImageFile
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.documents import pdf as pdf_module
from paris_avenir.documents import service as documents
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.documents.validation import RefusedFile, check_upload
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.youths.models import Youth
from tests.conftest import BACKENDS, postgres_schema_url
from tests.factories import PDF_BYTES, create_document, create_youth, jpeg_bytes
from tests.helpers import csrf_token, sign_in_as

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


# The files an attacker sends.


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    """A valid PNG of 10 000 × 10 000 grey+alpha pixels (100 megapixels, 400 MB once decoded by
    Pillow) that weighs about 190 KB: zeros compress a thousand times."""
    width = height = 10_000
    compressor = zlib.compressobj(9)
    row = bytes(1 + 2 * width)  # filter byte, then two bytes per pixel
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 4, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims another size."""
    content = jpeg_bytes((40, 30))
    frame = content.index(b"\xff\xc0") + 5  # marker, length (2), precision (1)
    return content[:frame] + struct.pack(">HH", height, width) + content[frame + 4 :]


def heic_declaring(width: int, height: int) -> bytes:
    """A real 64 × 48 HEIC photo (libheif's output) whose `ispe` property declares another
    coded size: Pillow still reports 64 × 48, the size after the clean-aperture crop, while the
    decoder would allocate the declared size."""
    content = (DATA / "photo.heic").read_bytes()
    ispe = content.index(b"ispe") + 8  # type, then version and flags
    return content[:ispe] + struct.pack(">II", width, height) + content[ispe + 8 :]


def active_pdf() -> bytes:
    """One page, and every kind of active content a reader could run."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    page = pdf.pages[0]
    page.obj.Contents = pdf.make_stream(b"BT /F1 12 Tf 72 720 Td (RIB de Mariam) Tj ET")
    script = pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String("app.alert('ouvert');")))
    pdf.Root.OpenAction = script
    pdf.Root.AA = Dictionary(WC=Dictionary(S=Name.JavaScript, JS=String("app.alert('fermé');")))
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("init"), script])))
    pdf.attachments["facture.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ-payload-of-an-exe")
    launch = Dictionary(S=Name.Launch, F=String("cmd.exe"), Win=Dictionary(F=String("cmd.exe")))
    page.obj.AA = Dictionary(O=launch)
    stream_script = pdf.make_stream(b"app.launchURL('http://attaquant.example/vol');")

    def link(top: int, action: Dictionary) -> Dictionary:
        return Dictionary(
            Type=Name.Annot, Subtype=Name.Link, Rect=Array([0, top, 100, top + 50]), A=action
        )

    page.obj.Annots = pdf.make_indirect(
        Array(
            [
                link(0, Dictionary(S=Name.Launch, F=String("cmd.exe"))),
                link(60, Dictionary(S=Name.JavaScript, JS=stream_script)),
                link(120, Dictionary(S=Name.URI, URI=String("javascript:alert(1)"))),
                link(180, Dictionary(S=Name.URI, URI=String("https://www.paris.fr/"))),
                Dictionary(
                    Type=Name.Annot,
                    Subtype=Name.FileAttachment,
                    Rect=Array([0, 240, 20, 260]),
                    FS=pikepdf.AttachedFileSpec(pdf, b"MZ-second-payload").obj,
                ),
            ]
        )
    )
    output = io.BytesIO()
    pdf.save(output, compress_streams=False)  # every marker below readable in the bytes
    return output.getvalue()


def every_byte(content: bytes) -> bytes:
    """The file and each of its streams decoded: nothing hides in compressed data."""
    with pikepdf.open(io.BytesIO(content)) as pdf:
        streams = [obj.read_bytes() for obj in pdf.objects if isinstance(obj, pikepdf.Stream)]
    return content + b"".join(streams)


# Leftovers an attacker or a reader could use: none may remain in what is stored.
FORBIDDEN = [
    b"/JavaScript",
    b"/JS",
    b"/Launch",
    b"/OpenAction",
    b"/AA",
    b"/EmbeddedFiles",
    b"/EF",
    b"/FileAttachment",
    b"app.alert",
    b"app.launchURL",
    b"cmd.exe",
    b"MZ-payload",
    b"MZ-second",
    b"javascript:",
]


# The vault's pages, through the test application (SQLite and PostgreSQL).


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session) -> Youth:
    youth = create_youth(session, first_name="Mariam")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    return youth


async def upload(
    client: httpx.AsyncClient, content: bytes, filename: str, kind: str = "rib"
) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(
        "/mon-espace/documents",
        data={"csrftoken": token, "type_document": kind},
        files={"fichier": (filename, content, "application/octet-stream")},
    )


def stored(session: Session, store: DocumentStore) -> tuple[int, int]:
    rows = session.scalar(select(func.count()).select_from(Document)) or 0
    return rows, store.count_files()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("kind", "filename"),
    [("png", "releve.png"), ("jpeg", "photo.jpg"), ("heic", "IMG_0042.HEIC")],
)
async def test_an_image_bomb_is_refused_from_its_header_quickly_and_nothing_is_stored(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    png_bomb: bytes,
    kind: str,
    filename: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = {
        "png": png_bomb,
        "jpeg": jpeg_claiming(10_000, 10_000),
        "heic": heic_declaring(10_000, 10_000),
    }[kind]
    assert len(content) < 200_000
    # "Quickly" means nothing is decoded: the refusal comes from the header. Counted, not
    # timed — the CPU time of this process also holds whatever else the suite left running
    # (seen at 1 s once in CI for a 17 ms refusal); the cost in CPU and memory is measured in
    # a fresh process below (test_a_100_megapixel_png_costs_the_vault_neither_memory_nor_time).
    decodings: list[str] = []
    # Pillow's decoders, and pi-heif's, which decodes before Pillow's load.
    for image_class in (ImageFile.ImageFile, pi_heif_plugin._LibHeifImageFile):
        real_load = image_class.load

        def counted_load(image: ImageFile.ImageFile, real_load: Any = real_load) -> Any:
            decodings.append(type(image).__name__)
            return real_load(image)

        monkeypatch.setattr(image_class, "load", counted_load)
    token = await csrf_token(client)
    response = await client.post(
        "/mon-espace/documents",
        data={"csrftoken": token, "type_document": "identite"},
        files={"fichier": (filename, content, "application/octet-stream")},
    )
    assert response.status_code == 422
    assert "Cette image est trop grande : plus de 40 millions de pixels" in response.text
    assert decodings == []
    assert stored(session, app.state.document_store) == (0, 0)
    # The count can fail: an ordinary photo of the same kind is decoded (to be re-encoded).
    if kind == "heic":
        ordinary = (DATA / "photo.heic").read_bytes()  # pi-heif reads HEIF, never writes it
    else:
        buffer = io.BytesIO()
        Image.linear_gradient("L").convert("RGB").save(buffer, format=kind.upper())
        ordinary = buffer.getvalue()
    check_upload(ordinary)
    assert decodings != []


MEASURE = """
import io, json, sys, time, warnings
from PIL import Image
from paris_avenir.documents.validation import RefusedFile, check_upload
warnings.simplefilter("ignore")

def peak_kb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["VmHWM"].split()[0])

content = sys.stdin.buffer.read()
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # the peak starts again from the memory in use now (Linux >= 4.0)
before = peak_kb()
started = time.process_time()
outcome = "accepted"
if sys.argv[1] == "vault":
    try:
        check_upload(content)
    except RefusedFile as refusal:
        outcome = str(refusal)
elif sys.argv[1] == "vault-4-at-once":
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:
        outcome = ", ".join({check.content_type for check in pool.map(check_upload, [content] * 4)})
else:  # what the vault did before: decode whatever the header says
    Image.MAX_IMAGE_PIXELS = None
    Image.open(io.BytesIO(content)).load()
print(json.dumps({
    "outcome": outcome,
    "cpu_seconds": round(time.process_time() - started, 4),
    "peak_growth_mb": round((peak_kb() - before) / 1024, 2),
}))
"""


def measure(content: bytes, mode: str) -> dict[str, Any]:
    """Growth of the peak resident memory (VmHWM, reset first; it counts Pillow's C buffers,
    which tracemalloc cannot see) and CPU time, in a fresh process."""
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE, mode],
        input=content,
        capture_output=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    print(f"{mode}: {result}")
    return result


def test_a_100_megapixel_png_costs_the_vault_neither_memory_nor_time(png_bomb: bytes) -> None:
    vault = measure(png_bomb, "vault")
    assert "trop grande" in vault["outcome"]
    assert vault["peak_growth_mb"] < 100 and vault["cpu_seconds"] < 1.0
    # The measure can fail: the same file decoded takes hundreds of megabytes.
    decoded = measure(png_bomb, "decode")
    assert decoded["peak_growth_mb"] > 100


@pytest.mark.parametrize(
    ("size", "budget_mb"),
    [((4032, 3024), 100), ((7300, 5470), 200)],
    ids=["12-megapixel-phone-photo", "40-megapixel-limit"],
)
def test_photos_up_to_the_limit_are_accepted_within_a_memory_budget(
    size: tuple[int, int], budget_mb: int
) -> None:
    # Two decodings at most run at once (validation.DECODING): twice the budget in all.
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buffer, format="JPEG")
    result = measure(buffer.getvalue(), "vault")
    assert result["outcome"] == "accepted" and result["peak_growth_mb"] < budget_mb


def test_four_large_photos_at_once_are_decoded_two_by_two() -> None:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((7300, 5470)).convert("RGB").save(buffer, format="JPEG")
    result = measure(buffer.getvalue(), "vault-4-at-once")
    assert result["outcome"] == "image/jpeg"
    assert result["peak_growth_mb"] < 2 * 200  # four at once would take twice that


async def test_a_pdf_with_javascript_and_launch_is_stored_without_them(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    original = active_pdf()
    assert [marker for marker in FORBIDDEN if marker not in every_byte(original)] == []
    response = await upload(client, original, "rib.pdf")
    assert response.status_code == 303
    document = session.scalars(select(Document)).one()
    kept = await client.get(f"/mon-espace/documents/{document.id}")
    assert kept.status_code == 200 and kept.headers["content-type"] == "application/pdf"
    assert [marker for marker in FORBIDDEN if marker in every_byte(kept.content)] == []
    with pikepdf.open(io.BytesIO(kept.content)) as pdf:
        assert pdf_module.active_content(pdf) == 0
        assert len(pdf.pages) == 1
        assert b"RIB de Mariam" in pdf.pages[0].Contents.read_bytes()  # the page is intact
        links = [str(annot.A.URI) for annot in pdf.pages[0].Annots if "/A" in annot]
        assert links == ["https://www.paris.fr/"]  # a web link stays
        assert not pdf.is_encrypted


def test_a_pdf_whose_active_content_cannot_be_removed_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check = pdf_module.active_content

    def removes_nothing(pdf: pikepdf.Pdf, *, remove: bool = False) -> int:
        return check(pdf)

    monkeypatch.setattr(pdf_module, "active_content", removes_nothing)
    with pytest.raises(RefusedFile, match=r"éléments actifs .* ne peuvent pas être retirés"):
        check_upload(active_pdf())


def _encrypted(user_password: str) -> bytes:
    output = io.BytesIO()
    with pikepdf.open(io.BytesIO(PDF_BYTES)) as pdf:
        pdf.save(output, encryption=pikepdf.Encryption(user=user_password, owner="banque"))
    return output.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_encrypted("secret"), "Ce PDF est protégé par un mot de passe"),
        (PDF_BYTES[: len(PDF_BYTES) // 2], "Ce PDF est incomplet ou abîmé"),
        (b"%PDF-1.7\n" + os.urandom(4000), "Ce PDF est incomplet ou abîmé"),
        (b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF", "abîmé"),
    ],
    ids=["password", "truncated", "noise", "no-page"],
)
async def test_encrypted_or_broken_pdfs_are_refused_in_french(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    content: bytes,
    message: str,
) -> None:
    response = await upload(client, content, "releve.pdf")
    assert response.status_code == 422 and message in response.text
    assert stored(session, app.state.document_store) == (0, 0)


def test_a_pdf_with_only_an_owner_password_opens_everywhere_and_is_stored_plain() -> None:
    # Banks lock their statements against editing, not against reading.
    checked = check_upload(_encrypted(""))
    with pikepdf.open(io.BytesIO(checked.content)) as pdf:
        assert not pdf.is_encrypted and len(pdf.pages) == 1


async def test_a_full_disk_gives_a_clear_error_and_leaves_nothing_behind(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store: DocumentStore = app.state.document_store
    real_write = os.write
    partial: list[str] = []

    def disk_full_halfway(descriptor: int, data: Any) -> int:
        target = os.readlink(f"/proc/self/fd/{descriptor}")
        if not target.startswith(str(store.directory)):
            return real_write(descriptor, data)
        real_write(descriptor, bytes(data[: len(data) // 2]))  # half the file reaches the disk
        partial.append(target)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_full_halfway)
    response = await upload(client, PDF_BYTES, "rib.pdf")
    monkeypatch.undo()
    assert partial, "the write really failed halfway"
    assert response.status_code == 503
    assert "Le serveur n’a plus de place pour enregistrer votre document" in response.text
    assert stored(session, store) == (0, 0)
    assert [path for path in store.directory.rglob("*") if path.is_file()] == []


# A file and its row change together, on a real database whose commits can fail.


@dataclass
class Platform:
    app: FastAPI
    engine: Engine
    factory: sessionmaker[Session]
    store: DocumentStore


@pytest.fixture(scope="module", params=BACKENDS)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """The application with its own sessions (the real get_session: commit, then close), on
    a database of its own."""
    directory = tmp_path_factory.mktemp(f"documents-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'documents.sqlite3'}"
    else:
        url = postgres_schema_url("document_safety", needed_for="documents on PostgreSQL")
    engine = create_database_engine(url)
    upgrade_to_head(engine)
    settings = Settings(
        env="dev",
        secret_key="documents-test-secret-" + "x" * 32,
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url="smtp://127.0.0.1:9",
    )
    app = create_app(settings, engine=engine)
    yield Platform(app, engine, make_session_factory(engine), app.state.document_store)
    engine.dispose()


@contextmanager
def commits_fail(engine: Engine) -> Iterator[None]:
    """Every COMMIT fails and the database drops the transaction, as when a deferred
    constraint or a serialisation failure refuses it at that very moment."""

    def refuse(connection: Any) -> None:
        connection.connection.dbapi_connection.rollback()
        raise OperationalError("COMMIT", None, Exception("simulated: the commit was refused"))

    event.listen(engine, "commit", refuse)
    try:
        yield
    finally:
        event.remove(engine, "commit", refuse)


@pytest.fixture
async def signed_in(platform: Platform) -> AsyncIterator[tuple[httpx.AsyncClient, Youth]]:
    transport = httpx.ASGITransport(app=platform.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with platform.factory() as session:
            youth = create_youth(session)
            session.commit()
            sign_in_as(client, platform.app, session, youth=youth)
        yield client, youth


def rows_of(platform: Platform, youth: Youth) -> list[Document]:
    with platform.factory() as session:
        return list(session.scalars(select(Document).where(Document.youth_id == youth.id)))


def files_of(platform: Platform, documents_: list[Document]) -> list[Path]:
    keys = {document.storage_key for document in documents_}
    return [path for path in platform.store.directory.rglob("*") if path.stem in keys]


def all_files(platform: Platform) -> set[Path]:
    directory = platform.store.directory
    return (
        {path for path in directory.rglob("*") if path.is_file()} if directory.exists() else set()
    )


async def test_an_upload_whose_commit_fails_leaves_neither_file_nor_row(
    platform: Platform, signed_in: tuple[httpx.AsyncClient, Youth]
) -> None:
    client, youth = signed_in
    before = all_files(platform)
    token = await csrf_token(client)
    with commits_fail(platform.engine):
        response = await client.post(
            "/mon-espace/documents",
            data={"csrftoken": token, "type_document": "rib"},
            files={"fichier": ("rib.pdf", PDF_BYTES, "application/pdf")},
        )
    assert response.status_code == 500
    assert rows_of(platform, youth) == []
    assert all_files(platform) == before  # no orphan file, not even a temporary one

    # The same upload, committed: one row, one file under its real name.
    response = await client.post(
        "/mon-espace/documents",
        data={"csrftoken": token, "type_document": "rib"},
        files={"fichier": ("rib.pdf", PDF_BYTES, "application/pdf")},
    )
    assert response.status_code == 303
    (document,) = rows_of(platform, youth)
    assert [path.name for path in files_of(platform, [document])] == [document.storage_key]


async def test_a_deletion_whose_commit_fails_keeps_the_file_downloadable(
    platform: Platform, signed_in: tuple[httpx.AsyncClient, Youth]
) -> None:
    client, youth = signed_in
    token = await csrf_token(client)
    uploaded = await client.post(
        "/mon-espace/documents",
        data={"csrftoken": token, "type_document": "rib"},
        files={"fichier": ("rib.pdf", PDF_BYTES, "application/pdf")},
    )
    assert uploaded.status_code == 303
    (document,) = rows_of(platform, youth)
    with commits_fail(platform.engine):
        response = await client.post(
            f"/mon-espace/documents/{document.id}/supprimer", data={"csrftoken": token}
        )
    assert response.status_code == 500
    assert [row.id for row in rows_of(platform, youth)] == [document.id]
    download = await client.get(f"/mon-espace/documents/{document.id}")
    assert download.status_code == 200 and download.content.startswith(b"%PDF-")

    # Committed, the deletion takes the file with it.
    response = await client.post(
        f"/mon-espace/documents/{document.id}/supprimer", data={"csrftoken": token}
    )
    assert response.status_code == 303
    assert rows_of(platform, youth) == [] and files_of(platform, [document]) == []


def test_a_rolled_back_savepoint_takes_its_file_and_keeps_the_others(platform: Platform) -> None:
    before = all_files(platform)
    with platform.factory() as session:
        youth = create_youth(session)
        kept = create_document(session, platform.store, youth, DocumentKind.CV)
        with pytest.raises(RuntimeError), session.begin_nested():
            create_document(session, platform.store, youth, DocumentKind.IDENTITY)
            raise RuntimeError("the rest of the request failed")
        session.commit()
    assert all_files(platform) - before == {platform.store._path(kept.storage_key)}
    with platform.factory() as session:
        doomed = create_document(session, platform.store, create_youth(session), DocumentKind.CV)
        session.rollback()
    assert not platform.store.exists(doomed.storage_key)
    assert not platform.store.has_staged(doomed.storage_key)


def test_a_released_savepoint_waits_for_the_outer_commit(platform: Platform) -> None:
    with platform.factory() as session:
        youth = create_youth(session)
        existing = create_document(session, platform.store, youth, DocumentKind.CV)
        session.commit()
    with platform.factory() as session:
        with session.begin_nested():
            added = create_document(session, platform.store, youth, DocumentKind.LEASE)
            documents.delete_document(
                session, platform.store, session.get_one(Document, existing.id)
            )
        assert not platform.store.exists(added.storage_key)  # not before the real commit
        assert platform.store.exists(existing.storage_key)
        session.rollback()
    assert not platform.store.has_staged(added.storage_key)
    assert not platform.store.exists(added.storage_key)
    assert platform.store.read(existing.storage_key).startswith(b"%PDF-")


# The hourly sweep.


def _age(path: Path, age: timedelta) -> None:
    instant = (NOW - age).timestamp()
    os.utime(path, (instant, instant))


def test_the_sweep_removes_old_orphans_finishes_interrupted_renames_and_reports_dangling_rows(
    session: Session, tmp_path: Path, app: FastAPI
) -> None:
    store = DocumentStore(tmp_path / "vault", app.state.cipher)
    youth = create_youth(session)
    kept, interrupted, lost = (
        create_document(session, store, youth, kind)
        for kind in (DocumentKind.CV, DocumentKind.LEASE, DocumentKind.IDENTITY)
    )
    session.commit()
    # A crash between the commit and the rename: the row exists, its file is still staged.
    store._path(interrupted.storage_key).rename(store._temporary(interrupted.storage_key))
    store.delete(lost.storage_key)  # its file went missing
    orphan, young_orphan, stale_temporary = store.new_key(), store.new_key(), store.new_key()
    for key, path in (
        (orphan, store._path(orphan)),
        (young_orphan, store._path(young_orphan)),
        (stale_temporary, store._temporary(stale_temporary)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.cipher.encrypt(b"left by a crash " + key.encode()))
    for path in store.directory.rglob("*"):
        if path.is_file():
            _age(path, timedelta(hours=2))
    _age(store._path(young_orphan), timedelta(minutes=20))  # perhaps an upload in progress

    report = documents.sweep_orphans(session, store, now=NOW)

    assert report.removed == 2 and report.moved_into_place == 1
    assert report.dangling == [lost.id]
    assert not store.exists(orphan) and not store.has_staged(stale_temporary)
    assert store.exists(young_orphan)
    assert store.read(interrupted.storage_key).startswith(b"%PDF-")
    assert store.read(kept.storage_key).startswith(b"%PDF-")
    again = documents.sweep_orphans(session, store, now=NOW)
    assert (again.removed, again.moved_into_place, again.dangling) == (0, 0, [lost.id])


def test_the_scheduler_sweeps_every_hour_and_logs_dangling_rows(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    app: FastAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from paris_avenir.messaging.channels import build_channels
    from paris_avenir.scheduler import build_scheduler, sweep_documents

    job = build_scheduler(settings, session_factory, build_channels(settings)).get_job(
        "document_sweep"
    )
    assert job is not None and job.trigger.interval == timedelta(hours=1)

    document = create_document(
        session, app.state.document_store, create_youth(session), DocumentKind.CV
    )
    session.commit()
    app.state.document_store.delete(document.storage_key)
    with caplog.at_level("ERROR", logger="paris_avenir.scheduler"):
        sweep_documents(session_factory, settings)
    assert f"1 rows whose file is missing: {document.id}" in caplog.text
