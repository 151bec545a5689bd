"""Secrets and encryption, built only from the cryptography package and the standard library.

- Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet for data at rest: the first key
  encrypts, every listed key decrypts, so keys rotate without downtime.
- HMAC-SHA256 keyed by SECRET_KEY for values that must be looked up but never stored in
  clear (one-time codes, destinations for rate limits, IP addresses).
- SHA-256 of random tokens (session ids, link tokens): they carry 256 bits of entropy, so a
  slow hash adds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from paris_avenir.config import Settings


def _development_key(secret_key: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"paris-avenir data at rest"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(derived)


def build_cipher(settings: Settings) -> MultiFernet:
    keys = [key.strip() for key in settings.encryption_keys.split(",") if key.strip()]
    if not keys:
        keys = [_development_key(settings.secret_key).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def keyed_hash(secret_key: str, value: str, *, purpose: str) -> str:
    """A stable, non-reversible fingerprint of value, distinct per purpose."""
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def constant_time_equals(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
