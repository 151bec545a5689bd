"""Encrypted file storage outside the web root, changed together with the database.

Each document is one file named by a random key, holding a Fernet token of its bytes.
MultiFernet decrypts with any configured key and encrypts with the first, so rotating keys
is: prepend a new key, run `paris-avenir rotate-document-keys`, then drop the old key.

A file and its row change together. A new file is written under a temporary name, the row
is committed, and only then is the file renamed into place; if the transaction rolls back
or its commit fails, the temporary file is removed. A deleted document's file is removed
once the deletion is committed, never before. What a crash can still leave (a temporary
file, a file whose deletion was committed) is cleaned by `service.sweep_orphans`, run every
hour by the scheduler.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import MultiFernet
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from paris_avenir.documents.clamav import ClamdScanner
from paris_avenir.documents.validation import UploadUnavailable
from paris_avenir.web.i18n import gettext as _

logger = logging.getLogger(__name__)

TEMPORARY_SUFFIX = ".tmp"
WRITE_CHUNK_BYTES = 1024 * 1024
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
PENDING = "paris_avenir.documents.pending_files"


@dataclass
class StoredFile:
    key: str
    temporary: bool
    modified_at: datetime


@dataclass
class _Pending:
    """File changes waiting for the end of a session's transaction."""

    staged: list[tuple[DocumentStore, str, SessionTransaction]] = field(default_factory=list)
    deleted: list[tuple[DocumentStore, str, SessionTransaction]] = field(default_factory=list)


def _is_within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


class DocumentStore:
    def __init__(
        self, directory: Path, cipher: MultiFernet, *, scanner: ClamdScanner | None = None
    ) -> None:
        self.directory = directory
        self.cipher = cipher
        # Every upload passes it first when one is configured (documents.clamav).
        self.scanner = scanner

    @staticmethod
    def new_key() -> str:
        return secrets.token_hex(24)

    @staticmethod
    def _checked(key: str) -> str:
        if len(key) != 48 or not all(char in "0123456789abcdef" for char in key):
            raise ValueError("not a storage key")
        return key

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / self._checked(key)

    def _temporary(self, key: str) -> Path:
        return self._path(key).with_suffix(TEMPORARY_SUFFIX)

    # Writing, in step with the session's transaction.

    def stage(self, session: Session, key: str, content: bytes) -> None:
        """Write the encrypted file under its temporary name; it takes its real name when
        the session's transaction commits and is removed if the transaction does not.

        A full disk raises UploadUnavailable (in French), with nothing left behind."""
        transaction = self._current(session)
        path = self._temporary(key)
        token = self.cipher.encrypt(content)
        created = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
            try:
                view = memoryview(token)
                while view:
                    written = os.write(descriptor, view[:WRITE_CHUNK_BYTES])
                    view = view[written:]
                os.fsync(descriptor)  # on disk before the row that points to it commits
            finally:
                os.close(descriptor)
        except OSError as error:
            if created:
                path.unlink(missing_ok=True)  # no partial file left behind
            if error.errno in DISK_FULL:
                logger.error(
                    "document store full (%s): upload refused", errno.errorcode[error.errno]
                )
                raise UploadUnavailable(
                    _(
                        "Le serveur n’a plus de place pour enregistrer votre document : il "
                        "n’a pas été enregistré. L’équipe technique est prévenue ; "
                        "réessayez plus tard."
                    )
                ) from None
            raise
        pending = session.info.setdefault(PENDING, _Pending())
        pending.staged.append((self, key, transaction))

    def delete_after_commit(self, session: Session, key: str) -> None:
        """Remove the file once the session's transaction has committed (kept otherwise)."""
        pending = session.info.setdefault(PENDING, _Pending())
        pending.deleted.append((self, key, self._current(session)))

    @staticmethod
    def _current(session: Session) -> SessionTransaction:
        # The transaction the row will be written in (begun now if the session has none yet).
        return session.get_nested_transaction() or session.get_transaction() or session.begin()

    def publish(self, key: str) -> None:
        """Give a staged file its real name (after the commit)."""
        self._temporary(key).replace(self._path(key))

    def discard(self, key: str) -> None:
        self._temporary(key).unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    # Reading and maintenance.

    def read(self, key: str) -> bytes:
        return self.cipher.decrypt(self._path(key).read_bytes())

    def rotate(self, key: str) -> None:
        """Re-encrypt with the newest key."""
        path = self._path(key)
        temporary = path.with_suffix(".rotating")
        temporary.write_bytes(self.cipher.rotate(path.read_bytes()))
        os.chmod(temporary, 0o600)
        temporary.replace(path)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def has_staged(self, key: str) -> bool:
        return self._temporary(key).exists()

    def files(self) -> Iterator[StoredFile]:
        """Every file under the directory that bears a storage key (final or temporary)."""
        if not self.directory.exists():
            return
        for path in self.directory.glob("??/*"):
            name = path.name.removesuffix(TEMPORARY_SUFFIX)
            try:
                self._checked(name)
                stat = path.stat()
            except (ValueError, FileNotFoundError):
                continue
            yield StoredFile(
                key=name,
                temporary=path.name.endswith(TEMPORARY_SUFFIX),
                modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            )

    def remove_file(self, stored: StoredFile) -> None:
        (self.discard if stored.temporary else self.delete)(stored.key)

    def count_files(self) -> int:
        return (
            sum(1 for path in self.directory.rglob("*") if path.is_file())
            if self.directory.exists()
            else 0
        )


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the files wait for the outermost commit
    pending: _Pending | None = session.info.pop(PENDING, None)
    if pending is None:
        return
    for store, key, _transaction in pending.staged:
        try:
            store.publish(key)
        except OSError:
            # The row is committed: the hourly sweep renames the file it finds staged.
            logger.exception("document file not moved into place after commit")
    for store, key, _transaction in pending.deleted:
        store.delete(key)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back transaction (or savepoint) takes its staged files with it and keeps the
    files it meant to delete."""
    pending: _Pending | None = session.info.get(PENDING)
    if pending is None:
        return
    for store, key, transaction in pending.staged:
        if _is_within(transaction, previous_transaction):
            store.discard(key)
    pending.staged = [
        item for item in pending.staged if not _is_within(item[2], previous_transaction)
    ]
    pending.deleted = [
        item for item in pending.deleted if not _is_within(item[2], previous_transaction)
    ]


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended without a commit (a failed commit, a closed session):
    nothing staged in it survives."""
    if transaction.parent is not None:
        return
    pending: _Pending | None = session.info.pop(PENDING, None)
    if pending is None:
        return
    for store, key, _transaction in pending.staged:
        store.discard(key)
