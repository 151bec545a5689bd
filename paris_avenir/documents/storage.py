"""Encrypted file storage outside the web root.

Each document is one file named by a random key, holding a Fernet token of its bytes.
MultiFernet decrypts with any configured key and encrypts with the first, so rotating keys
is: prepend a new key, run `paris-avenir rotate-document-keys`, then drop the old key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import MultiFernet


class DocumentStore:
    def __init__(self, directory: Path, cipher: MultiFernet) -> None:
        self.directory = directory
        self.cipher = cipher

    @staticmethod
    def new_key() -> str:
        return secrets.token_hex(24)

    def _path(self, key: str) -> Path:
        if len(key) != 48 or not all(char in "0123456789abcdef" for char in key):
            raise ValueError("not a storage key")
        return self.directory / key[:2] / key

    def write(self, key: str, content: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(self.cipher.encrypt(content))
        os.chmod(temporary, 0o600)
        temporary.replace(path)  # never a half-written file under the real name

    def read(self, key: str) -> bytes:
        return self.cipher.decrypt(self._path(key).read_bytes())

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def rotate(self, key: str) -> None:
        """Re-encrypt with the newest key."""
        path = self._path(key)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(self.cipher.rotate(path.read_bytes()))
        temporary.replace(path)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def count_files(self) -> int:
        return (
            sum(1 for path in self.directory.rglob("*") if path.is_file())
            if self.directory.exists()
            else 0
        )
