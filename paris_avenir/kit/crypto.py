"""Secrets and encryption, built only from the cryptography package and the standard library.

- Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet for data at rest: the first key
  encrypts, every listed key decrypts, so keys rotate without downtime.
- HMAC-SHA256 keyed by SECRET_KEY for values that must be looked up but never stored in
  clear (one-time codes, destinations for rate limits, IP addresses).
- SHA-256 of random tokens (session ids, link tokens): they carry 256 bits of entropy, so a
  slow hash adds nothing.
- Encrypted columns (EncryptedText, EncryptedJSON, EncryptedBool, EncryptedInt,
  EncryptedStrEnum): the same MultiFernet and keys as documents, applied by SQLAlchemy when a
  value is written or read, so the database only ever holds Fernet tokens. A Fernet token is
  random, so these columns cannot be compared or grouped in SQL: what needs a value computes
  in Python after reading.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import json
import secrets
import uuid
import weakref
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Generic, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from sqlalchemy import MetaData, Text, column, select, table, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause
from sqlalchemy.types import TypeDecorator

from paris_avenir.config import Settings, get_settings


def _development_key(secret_key: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"paris-avenir data at rest"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(derived)


def _keys(settings: Settings) -> list[str]:
    keys = [key.strip() for key in settings.encryption_keys.split(",") if key.strip()]
    return keys or [_development_key(settings.secret_key).decode()]


def build_cipher(settings: Settings) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys(settings)])


# --- Columns encrypted at rest ----------------------------------------------------------
# A column type sees the dialect, not the application: the cipher is registered for an
# engine's dialect by configure_at_rest(settings, engine) (create_app does it with its
# settings and engine); anything else (the CLI, the migrations, an engine no app was built
# on) uses the environment's settings.
_by_dialect: weakref.WeakKeyDictionary[Dialect, MultiFernet] = weakref.WeakKeyDictionary()
_default: MultiFernet | None = None
# Development only (no PARIS_AVENIR_ENCRYPTION_KEYS: the key is derived from SECRET_KEY):
# keys derived from the secrets used earlier in this process still decrypt, so data written
# before an app was built with another secret (demo data, the tests) stays readable.
_derived_earlier: list[str] = []


def _at_rest_keys(settings: Settings) -> list[str]:
    keys = _keys(settings)
    if not settings.is_prod and not settings.encryption_keys.strip():
        keys = keys + [key for key in _derived_earlier if key not in keys]
        _derived_earlier.extend(key for key in keys if key not in _derived_earlier)
    return keys


def configure_at_rest(settings: Settings, engine: Engine | None = None) -> MultiFernet:
    """Encrypt columns with the first of the settings' keys (the documents' keys), decrypt
    with any of them: for this engine, or by default."""
    global _default
    cipher = MultiFernet([Fernet(key) for key in _at_rest_keys(settings)])
    if engine is None:
        _default = cipher
    else:
        _by_dialect[engine.dialect] = cipher
    return cipher


def at_rest_cipher(dialect: Dialect | None = None) -> MultiFernet:
    if dialect is not None:
        registered = _by_dialect.get(dialect)
        if registered is not None:
            return registered
    return _default if _default is not None else configure_at_rest(get_settings())


def encrypt_at_rest(plain: str, dialect: Dialect | None = None) -> str:
    return at_rest_cipher(dialect).encrypt(plain.encode()).decode()


def decrypt_at_rest(token: str, dialect: Dialect | None = None) -> str:
    return at_rest_cipher(dialect).decrypt(token.encode()).decode()


def rotate_encrypted_columns(session: Session, metadata: MetaData) -> int:
    """Every value of every encrypted column (and of the columns holding Fernet tokens
    written by hand, marked info={"fernet_token": True}), encrypted again under the newest
    key (as `rotate-document-keys` does for files), so that an older key can then be removed.
    The tokens are read and written as they are stored: nothing is decrypted into the models."""
    cipher = at_rest_cipher(session.get_bind().dialect)
    rotated = 0
    for raw, name in _token_columns(metadata):
        values = session.execute(
            select(raw.c.id, raw.c[name]).where(raw.c[name].is_not(None))
        ).all()
        for row_id, token in values:
            session.execute(
                update(raw)
                .where(raw.c.id == row_id)
                .values({name: cipher.rotate(str(token).encode()).decode()})
            )
            rotated += 1
    return rotated


def undecryptable_columns(session: Session, metadata: MetaData) -> list[str]:
    """The encrypted columns ("table.column") whose first stored value no configured key
    decrypts: a database restored without its keys (or with other keys) says so here."""
    cipher = at_rest_cipher(session.get_bind().dialect)
    failing = []
    for raw, name in _token_columns(metadata):
        token = session.scalar(select(raw.c[name]).where(raw.c[name].is_not(None)).limit(1))
        if token is None:
            continue
        try:
            cipher.decrypt(str(token).encode())
        except InvalidToken:
            failing.append(f"{raw.name}.{name}")
    return failing


def _token_columns(metadata: MetaData) -> Iterator[tuple[TableClause, str]]:
    """Every column holding Fernet tokens, as a bare table (id and that column) and its name."""
    for mapped in metadata.sorted_tables:
        for encrypted in mapped.columns:
            if isinstance(encrypted.type, _Encrypted) or encrypted.info.get("fernet_token"):
                raw = table(
                    mapped.name, column("id", mapped.c.id.type), column(encrypted.name, Text())
                )
                yield raw, encrypted.name


T = TypeVar("T")


class _Encrypted(TypeDecorator[T], Generic[T]):
    """A value stored as a Fernet token in a TEXT column. None stays NULL."""

    impl = Text
    cache_ok = True

    def serialise(self, value: T) -> str:
        raise NotImplementedError

    def deserialise(self, plain: str) -> T:
        raise NotImplementedError

    def process_bind_param(self, value: T | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return encrypt_at_rest(self.serialise(value), dialect)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> T | None:
        if value is None:
            return None
        return self.deserialise(decrypt_at_rest(str(value), dialect))


class EncryptedText(_Encrypted[str]):
    cache_ok = True

    def serialise(self, value: str) -> str:
        return value

    def deserialise(self, plain: str) -> str:
        return plain


class EncryptedJSON(_Encrypted[Any]):
    cache_ok = True

    def serialise(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def deserialise(self, plain: str) -> Any:
        return json.loads(plain)


class EncryptedBool(_Encrypted[bool]):
    cache_ok = True

    def serialise(self, value: bool) -> str:
        return "true" if value else "false"

    def deserialise(self, plain: str) -> bool:
        return plain == "true"


class EncryptedInt(_Encrypted[int]):
    cache_ok = True

    def serialise(self, value: int) -> str:
        return str(int(value))

    def deserialise(self, plain: str) -> int:
        return int(plain)


E = TypeVar("E", bound=enum.StrEnum)


class EncryptedStrEnum(_Encrypted[E]):
    cache_ok = True

    def __init__(self, enum_class: type[E]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def serialise(self, value: E) -> str:
        return self.enum_class(value).value

    def deserialise(self, plain: str) -> E:
        return self.enum_class(plain)


def minimised_ip(address: str | None) -> str | None:
    """The network an address belongs to, never the address: /24 for IPv4, /48 for IPv6
    (CNIL's usual minimisation). Anything that is not an address is not kept."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def keyed_hash(secret_key: str, value: str, *, purpose: str) -> str:
    """A stable, non-reversible fingerprint of value, distinct per purpose."""
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def signed_id(value: uuid.UUID, *, secret_key: str, salt: str) -> str:
    """A short signed, timestamped token naming one id, for links that open without a
    password: the id's 16 bytes, not its 36-character text, so a link fits in one SMS."""
    compact = base64.urlsafe_b64encode(value.bytes).rstrip(b"=")
    return TimestampSigner(secret_key, salt=salt).sign(compact).decode()


def id_from_signed(
    token: str, *, secret_key: str, salt: str, max_age: timedelta
) -> uuid.UUID | None:
    """The id a signed_id() token names, or None when it is forged, damaged or older than
    max_age."""
    try:
        compact = TimestampSigner(secret_key, salt=salt).unsign(
            token, max_age=int(max_age.total_seconds())
        )
        return uuid.UUID(bytes=base64.urlsafe_b64decode(compact + b"=="))
    except (BadSignature, SignatureExpired, ValueError):
        return None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def constant_time_equals(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
