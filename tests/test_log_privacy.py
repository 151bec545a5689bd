"""No phone number, email, code, token or searched name in any log line.

The whole run's logs are scanned at the end by tests/log_privacy.py; these tests check that
the scan catches what it must (a `logger.info("sent to %s", phone)` fails the run, in this
process or in a command the tests start) and that the platform's own log lines are clean:
route templates in the access log, tracebacks without their messages."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.auth import links
from paris_avenir.logs import FORMAT, PrivateFormatter
from tests.factories import create_staff, create_youth
from tests.helpers import sign_in_as
from tests.log_privacy import platform_routes, scan

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PHONE, EMAIL = "+33639980012", "camille.essai@example.org"


# --- The scan -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("INFO paris_avenir.messaging sent to +33639980012", "phone"),
        ("INFO x sent to +33 6 39 98 00 12", "phone"),
        ("INFO x sent to 06 39 98 00 12", "phone"),
        ("INFO x sent to 06.39.98.00.12", "phone"),
        ("INFO x sent to 0639980012", "phone"),
        ("INFO x recipient 33639980012", "phone"),
        ("INFO httpx GET /events?phoneNumber=%2B33639980012", "phone"),
        ("INFO x sent to +447700900123", "phone"),
        ("INFO x sent to camille.essai@example.org", "email"),
        ("INFO x your code is 123456", "code"),
        ("INFO x code de connexion : 123 456", "code"),
        ('INFO paris_avenir.access 127.0.0.0/24 "GET /lien/Zx8_aB" 200 3ms', "raw path"),
        ('INFO paris_avenir.access 127.0.0.0/24 "GET /point/AbC.d.e" 200 3ms', "raw path"),
        ('INFO uvicorn.access "GET /pro?q=Dupont HTTP/1.1" 200', "query string"),
    ],
)
def test_the_scan_finds_personal_data_and_masks_it(line: str, kind: str) -> None:
    findings = scan([line], routes=platform_routes())
    assert len(findings) == 1 and kind in findings[0].kinds
    assert any(f"[{found}]" in findings[0].masked for found in findings[0].kinds)
    for secret in ("39980012", "39 98 00 12", "essai@", "123456", "123 456", "Dupont", "Zx8_aB"):
        assert secret not in findings[0].masked


def test_the_scan_finds_the_tokens_and_codes_the_run_generated() -> None:
    token = "q8N3-vV2kZ5hYt0WcLx9aBpR7sUeDfGj"
    findings = scan(
        [f"DEBUG x link {token} made", "DEBUG x attempt 482913 made"],
        tokens={token},
        codes={"482913"},
    )
    assert [finding.kinds for finding in findings] == [("token",), ("code",)]


def test_six_digits_heading_an_identifier_are_not_a_code() -> None:
    # CI failed once on an outbox UUID whose first six characters were digits equal to a
    # sign-in code generated earlier in the run.
    line = "INFO paris_avenir.messaging.outbox outbox 482913c6-874b-494c-b020-4354b00f1e3e queued"
    assert scan([line], codes={"482913"}) == []
    assert scan(["INFO x sent 482913 to the provider"], codes={"482913"}) != []


def test_the_platform_s_ordinary_lines_are_clean() -> None:
    lines = [
        "2026-12-01 12:44:15,123 INFO alembic.runtime.migration Running upgrade 1d119ac6a627",
        '2026-12-01 12:44:15,123 INFO paris_avenir.access 203.0.113.0/24 "GET /lien/{token}" '
        "200 12ms",
        '2026-12-01 12:44:15,123 INFO paris_avenir.access 2001:db8::/48 "POST /pro/jeunes/'
        '{youth_id}/notes" 303 8ms',
        "2026-12-01 12:44:15,123 INFO paris_avenir.messaging.outbox outbox "
        "0b5f36e2-52b1-4c8e-9a49-30a1c2e0f6d7 queued: SMS provider answered 503",
        "2026-12-01 12:44:15,123 INFO paris_avenir.scheduler outbox: 3 sent, 0 to retry, 0 failed",
        '2026-12-01 12:44:15,123 INFO paris_avenir.access 127.0.0.0/24 "POST /pro/admin/aides/'
        '{code}" 303 123ms',
        '2026-12-01 12:44:15,123 INFO paris_avenir.access 127.0.0.0/24 "POST /connexion/code" '
        "303 123ms",
        '2026-12-01 12:44:15,123 INFO paris_avenir.access 127.0.0.0/24 "GET /mon-espace/'
        'rendez-vous/nouveau" 200 124ms',
    ]
    assert scan(lines, routes=platform_routes()) == []


# --- The whole-run check, as a run of its own -------------------------------------------------


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A run of its own, in a subprocess (its records must not reach this run's log), that
    can import the project."""
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    return pytester


def _run(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=textwrap.dedent(body))
    return pytester.runpytest_subprocess("-p", "tests.log_privacy", "-p", "no:cacheprovider")


def test_a_run_whose_code_logs_a_phone_number_fails(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import logging

        def test_sends() -> None:
            phone = "+33 6 39 98 00 12"
            logging.getLogger("paris_avenir.messaging").info("sent to %s", phone)
        """,
    )
    # The test itself passed; the run fails, and says where, masked.
    result.stdout.fnmatch_lines(["*: phone: *sent to [[]phone[]]*", "*1 passed*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "39 98 00 12" not in result.stdout.str()


def test_a_run_whose_commands_log_an_email_fails(pytester: pytest.Pytester) -> None:
    """A `paris-avenir` command started with an environment cleared of PARIS_AVENIR_*."""
    result = _run(
        pytester,
        f"""
        import os, subprocess, sys

        def test_command() -> None:
            script = (
                "import logging; from paris_avenir.cli import configure_logging; "
                "configure_logging(); "
                "logging.getLogger('paris_avenir.cli').warning('mail to %s', 'camille@example.org')"
            )
            env = {{k: v for k, v in os.environ.items() if not k.startswith("PARIS_AVENIR_")}}
            subprocess.run([sys.executable, "-c", script], env=env, check=True,
                           capture_output=True, cwd={str(PROJECT_ROOT)!r})
        """,
    )
    result.stdout.fnmatch_lines(["*: email: *mail to [[]email[]]*", "*1 passed*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_run_that_logs_ids_only_passes(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import logging, uuid

        def test_sends() -> None:
            logging.getLogger("paris_avenir.messaging").info("outbox %s sent", uuid.uuid4())
        """,
    )
    result.stdout.fnmatch_lines(["*hold no personal data*"])
    assert result.ret == pytest.ExitCode.OK


# --- The platform's own lines ---------------------------------------------------------------


async def test_the_access_log_writes_route_templates_never_tokens_nor_searches(
    client: httpx.AsyncClient,
    app: FastAPI,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    youth = create_youth(session, last_name="Dupontel")
    staff = create_staff(session)
    token = links.create_login_link(
        session, youth.id, purpose="invitation", base_url="http://testserver"
    )
    session.commit()
    with caplog.at_level(logging.INFO, logger="paris_avenir.access"):
        await client.get(token.removeprefix("http://testserver"))
        sign_in_as(client, app, session, staff=staff)
        await client.get("/pro", params={"q": "Dupontel"})
        await client.get(f"/pro/jeunes/{youth.id}")
    lines = [r.getMessage() for r in caplog.records if r.name == "paris_avenir.access"]
    assert any('"GET /lien/{token}"' in line for line in lines), lines
    assert any('"GET /pro"' in line for line in lines), lines
    assert any('"GET /pro/jeunes/{youth_id}"' in line for line in lines), lines
    text = "\n".join(lines)
    assert "Dupontel" not in text and "?" not in text and str(youth.id) not in text
    assert token.rsplit("/", 1)[1] not in text


def test_a_traceback_keeps_where_not_what() -> None:
    try:
        try:
            raise KeyError(EMAIL)
        except KeyError as error:
            raise ValueError(f"no youth with phone {PHONE}") from error
    except ValueError:
        record = logging.LogRecord(
            "paris_avenir.web.errors", logging.ERROR, __file__, 1, "unhandled", (), sys.exc_info()
        )
    # Another handler rendered it first, message included, and cached that on the record.
    logging.Formatter().format(record)
    assert record.exc_text and PHONE in record.exc_text
    text = PrivateFormatter(FORMAT).format(record)
    assert "builtins.ValueError (message withheld from the log)" in text
    assert "builtins.KeyError (message withheld from the log)" in text
    assert "test_log_privacy.py" in text and "direct cause" in text
    assert "raise ValueError" not in text  # no source lines either
    assert PHONE not in text and EMAIL not in text
    assert os.path.basename(__file__) in text
