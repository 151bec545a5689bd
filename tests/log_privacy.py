"""The proof that no log line holds a phone number, an email address, a code or a token.

For the whole test run, every log record of this process (root logger at DEBUG: our own
loggers, uvicorn's in the PlatformServer threads, the access log, libraries) is written to one
file through the production formatter (paris_avenir.logs.PrivateFormatter), with the
production levels of the noisy libraries; every `paris-avenir` command the tests start as a
subprocess appends its lines to the same file (PARIS_AVENIR_LOG_FILE). Every token and
6-digit code the platform generates during the run is remembered. When the run ends, the
file is scanned: a phone number (French or international formats), an email address, a
6-digit code next to "code", a remembered token or code, a path of a parametrised route as
requested (not its template) or a query string fails the run, and the offending lines are
printed masked.

Loaded by tests/conftest.py (`pytest_plugins`); tests/test_log_privacy.py checks that it
catches `logger.info("sent to %s", phone)`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner

from paris_avenir.logs import FORMAT, LOG_FILE_ENV, PrivateFormatter, quiet_noisy_loggers

# Test doubles' own chatter, not the platform's: aiosmtpd narrates each SMTP command
# (recipients included) on "mail.log".
TEST_DOUBLE_LOGGERS = ("mail.log",)

_SEP = r"[ .\-]?"
PATTERNS: dict[str, re.Pattern[str]] = {
    "phone": re.compile(
        "|".join(
            [
                # +33 6 12 34 56 78, +33 (0)6…, 0033…, %2B33… (in a URL)
                rf"(?:\+|%2B|\b00){_SEP}33{_SEP}(?:\(0\){_SEP})?[1-9](?:{_SEP}\d{{2}}){{4}}(?!\d)",
                # 06 12 34 56 78, 06.12.34.56.78, 0612345678
                rf"(?<![\w.:/\-])0[1-9](?:{_SEP}\d{{2}}){{4}}(?![\w:])",
                # 33612345678 (E.164 without its +, as some providers write it)
                r"(?<![\w.:/\-])33[1-9]\d{8}(?!\w)",
                # any other E.164 number
                r"(?:\+|%2B)[1-9]\d{7,14}(?!\d)",
            ]
        )
    ),
    "email": re.compile(r"[\w.+\-]+(?:@|%40)[\w\-]+(?:\.[\w\-]+)+"),
    # "code 123456", "code de connexion : 123 456" (not "/aides/{code}" 303 123ms)
    "code": re.compile(
        r"(?i)(?<![{/_])\b(?:code|otp|totp)\b(?![}/_])[^\d\n\"]{0,24}(?<!\d)\d{3} ?\d{3}(?![\dm])"
    ),
    "query string": re.compile(r"/[\w./\-{}]*\?[\w%.\-]+=[^\s\"']*"),
}
CANDIDATE_TOKEN = re.compile(r"[A-Za-z0-9_\-]{20,}")
# Six digits inside an identifier (the head of a UUID such as 318204c6-874b-…) are not a
# code, even when they happen to equal one of the thousands of codes the run generated.
CANDIDATE_CODE = re.compile(r"(?<![\w\-])\d{6}(?![\w\-])")


@dataclass
class Generated:
    """Tokens and codes the platform generated during the run."""

    tokens: set[str]
    codes: set[str]


GENERATED = Generated(set(), set())


@dataclass(frozen=True)
class Finding:
    line_number: int
    kinds: tuple[str, ...]
    masked: str


@dataclass(frozen=True)
class Routes:
    """The parametrised routes' paths as requested, e.g. /lien/AbC…: the access log must
    write the template (/lien/{token}) instead. A path that is itself a route
    (/mon-espace/rendez-vous/nouveau beside /mon-espace/rendez-vous/{appointment_id}) is not
    a value."""

    patterns: tuple[re.Pattern[str], ...]
    fixed_paths: frozenset[str]


@functools.cache
def platform_routes() -> Routes:
    from fastapi import FastAPI
    from fastapi.routing import iter_route_contexts

    from paris_avenir.app import create_app
    from paris_avenir.config import Settings
    from paris_avenir.db import create_database_engine

    app: FastAPI = create_app(Settings(), engine=create_database_engine("sqlite://"))
    paths = {str(route.path) for route in iter_route_contexts(app.routes) if route.path}
    value = r"(?!\{)[^/\s\"'?{}]+"
    return Routes(
        patterns=tuple(
            re.compile(value.join(re.escape(part) for part in re.split(r"\{[^}]+\}", path)))
            for path in sorted(paths)
            if "{" in path
        ),
        fixed_paths=frozenset(path for path in paths if "{" not in path),
    )


def scan(
    lines: Iterable[str],
    *,
    tokens: set[str] | frozenset[str] = frozenset(),
    codes: set[str] | frozenset[str] = frozenset(),
    routes: Routes | None = None,
) -> list[Finding]:
    """The lines holding personal data or a secret, with those parts masked."""
    findings = []
    for number, line in enumerate(lines, start=1):
        spans: list[tuple[int, int, str]] = []
        for kind, pattern in PATTERNS.items():
            spans += [(match.start(), match.end(), kind) for match in pattern.finditer(line)]
        for pattern in routes.patterns if routes is not None else ():
            spans += [
                (match.start(), match.end(), "raw path")
                for match in pattern.finditer(line)
                if routes is not None and match.group() not in routes.fixed_paths
            ]
        spans += [
            (match.start(), match.end(), "token")
            for match in CANDIDATE_TOKEN.finditer(line)
            if match.group() in tokens
        ]
        spans += [
            (match.start(), match.end(), "code")
            for match in CANDIDATE_CODE.finditer(line)
            if match.group() in codes
        ]
        if spans:
            findings.append(
                Finding(number, tuple(sorted({kind for *_, kind in spans})), _mask(line, spans))
            )
    return findings


def _mask(line: str, spans: list[tuple[int, int, str]]) -> str:
    masked, last = [], 0
    for start, end, kind in sorted(spans):
        if start < last:
            continue
        masked += [line[last:start], f"[{kind}]"]
        last = end
    return "".join([*masked, line[last:]]).rstrip("\n")


# --- Capture --------------------------------------------------------------------------


class _NotTestDoubles(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(TEST_DOUBLE_LOGGERS)


def _remember_tokens() -> None:
    original_token, original_below = secrets.token_urlsafe, secrets.randbelow

    @functools.wraps(original_token)
    def token_urlsafe(nbytes: int | None = None) -> str:
        token = original_token(nbytes)
        GENERATED.tokens.add(token)
        return token

    @functools.wraps(original_below)
    def randbelow(exclusive_upper_bound: int) -> int:
        value = original_below(exclusive_upper_bound)
        if exclusive_upper_bound == 10**6:  # kit.crypto.new_numeric_code
            GENERATED.codes.add(f"{value:06d}")
        return value

    # The signed links (check-in, one-click unsubscribe: kit.crypto.signed_id) are tokens
    # too; their signer is patched on the class, whatever name the modules imported.
    original_sign = TimestampSigner.sign

    @functools.wraps(original_sign)
    def sign(self: TimestampSigner, value: str | bytes) -> bytes:
        signed = original_sign(self, value)
        GENERATED.tokens.add(signed.decode())
        return signed

    secrets.token_urlsafe = token_urlsafe
    secrets.randbelow = randbelow
    TimestampSigner.sign = sign  # type: ignore[method-assign]


def _log_file_for_subprocesses(path: Path) -> None:
    """Commands the tests start get the file too, even those started with an environment
    cleared of PARIS_AVENIR_* settings."""
    os.environ[LOG_FILE_ENV] = str(path)
    original = subprocess.Popen.__init__

    @functools.wraps(original)
    def popen_init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        if kwargs.get("env") is not None:
            kwargs["env"] = {**kwargs["env"], LOG_FILE_ENV: str(path)}
        original(self, *args, **kwargs)

    subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]


_handler: logging.Handler | None = None
_path: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _handler, _path
    descriptor, name = tempfile.mkstemp(prefix="paris-avenir-test-logs-", suffix=".log")
    os.close(descriptor)
    _path = Path(name)
    _handler = logging.FileHandler(_path, encoding="utf-8")
    _handler.setLevel(logging.DEBUG)
    _handler.setFormatter(PrivateFormatter(FORMAT))
    _handler.addFilter(_NotTestDoubles())
    root = logging.getLogger()
    root.addHandler(_handler)
    root.setLevel(logging.DEBUG)
    quiet_noisy_loggers()
    _remember_tokens()
    _log_file_for_subprocesses(_path)
    config.stash[_findings_key] = []


_findings_key = pytest.StashKey[list[Finding]]()
_scanned = {"lines": 0, "access": 0}


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as file:
        for line in file:
            _scanned["lines"] += 1
            _scanned["access"] += " paris_avenir.access " in line
            yield line


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if _handler is None or _path is None:
        return
    _handler.flush()
    logging.getLogger().removeHandler(_handler)
    _handler.close()
    findings = scan(
        _lines(_path),
        tokens=GENERATED.tokens,
        codes=GENERATED.codes,
        routes=platform_routes(),
    )
    session.config.stash[_findings_key] = findings
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif not os.environ.get("PARIS_AVENIR_KEEP_TEST_LOGS"):
        _path.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    findings = config.stash.get(_findings_key, [])
    if _path is None:
        return
    if not findings:
        terminalreporter.write_line(
            f"paris-avenir: the {_scanned['lines']} log lines of this run "
            f"({_scanned['access']} access-log lines) hold no personal data nor secret"
        )
        return
    terminalreporter.write_sep("=", "personal data or secrets in the logs", red=True)
    for finding in findings[:50]:
        terminalreporter.write_line(
            f"{_path}:{finding.line_number}: {', '.join(finding.kinds)}: {finding.masked}"
        )
    terminalreporter.write_line(
        f"paris-avenir: {len(findings)} log line(s) hold personal data or a secret "
        f"(full log: {_path}); the run fails",
        red=True,
    )
