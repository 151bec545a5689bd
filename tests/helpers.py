"""What a browser does, for the HTTP tests: carry the CSRF token, sign in."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.config import Settings
from paris_avenir.staff.models import StaffUser
from paris_avenir.youths.models import Youth

T = TypeVar("T")

CODE_IN_TEXT = re.compile(r"\b(\d{6})\b")


async def csrf_token(client: httpx.AsyncClient, page: str = "/") -> str:
    html = (await client.get(page)).text
    match = re.search(r'"x-csrftoken": "([^"]+)"', html)
    assert match, "every page carries the CSRF token for htmx"
    return match.group(1)


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any
) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(url, data={"csrftoken": token, **(data or {})}, **kwargs)


def last_sms(settings: Settings) -> dict[str, Any]:
    lines = Path(settings.sms_file).read_text().splitlines()
    return dict(json.loads(lines[-1]))


def sms_count(settings: Settings) -> int:
    path = Path(settings.sms_file)
    return len(path.read_text().splitlines()) if path.exists() else 0


def code_in(text: str) -> str:
    match = CODE_IN_TEXT.search(text)
    assert match, f"no code in {text!r}"
    return match.group(1)


def sign_in_as(
    client: httpx.AsyncClient,
    app: FastAPI,
    session: Session,
    *,
    youth: Youth | None = None,
    staff: StaffUser | None = None,
) -> str:
    """Put a fresh server-side session in the client's cookie jar (no UI round trip)."""
    settings: Settings = app.state.settings
    new = sessions.start_session(
        session,
        youth_id=youth.id if youth else None,
        staff_id=staff.id if staff else None,
        method=AuthMethod.CODE if youth else AuthMethod.PASSWORD_TOTP,
    )
    session.commit()
    client.cookies.set(settings.session_cookie_name, new.token)
    return new.token


def at_once(count: int, action: Callable[[int], T]) -> list[T]:
    """`count` calls released together by a barrier, each in its own thread: a race."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def provider_destination(response: httpx.Response) -> str:
    """Where the platform sends the browser on to a sign-in provider: the redirect of a
    plain link, or, after a form (CSP form-action 'self'), the page's instant refresh,
    which must also be offered as a link."""
    if response.status_code == 303:
        return str(response.headers["location"])
    assert response.status_code == 200, response.text
    refresh = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', response.text)
    assert refresh is not None, response.text
    destination = html.unescape(refresh.group(1))
    assert f'href="{refresh.group(1)}"' in response.text  # the same place, as a link
    return destination


def npm_installed(directory: Path, package: str) -> Path:
    """A folder's npm packages, installed once from its committed package-lock.json."""
    from tests.conftest import skip_or_fail

    if shutil.which("node") is None or shutil.which("npm") is None:
        skip_or_fail(f"node and npm are needed for {directory.name}")
    if not (directory / "node_modules" / package).exists():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=directory,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0:
            skip_or_fail(f"npm ci in {directory} failed: {installed.stderr.decode()[-300:]}")
    return directory


class CliResult:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(
    monkeypatch: Any, capsys: Any, environment: dict[str, str], *argv: str, stdin: str = ""
) -> CliResult:
    """`paris-avenir ARGV` in this process (a subprocess costs a second of imports): the
    environment holds only `environment`'s PARIS_AVENIR_ variables, the settings are read
    afresh, and the test's own logging stays as it is. One smoke test per command still
    runs it as a real process."""
    import io
    import os
    import sys

    from paris_avenir import cli
    from paris_avenir.config import get_settings

    for key in list(os.environ):
        if key.startswith("PARIS_AVENIR_"):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cli, "configure_logging", lambda: None)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    get_settings.cache_clear()
    capsys.readouterr()
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


class ForkedCli:
    """`paris-avenir ARGV` in a real child process forked from this one: its own process,
    its own database connections, but no second of imports (see forked_cli)."""

    def __init__(self, pid: int, stderr: Any) -> None:
        self.pid, self._stderr = pid, stderr

    def wait(self, timeout: float) -> tuple[int, str]:
        """The exit code and what the command wrote on stderr; killed after `timeout`."""
        import os
        import signal
        import time

        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise TimeoutError(f"paris-avenir (pid {self.pid}) still running")
            time.sleep(0.01)
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace")
        self._stderr.close()
        return os.waitstatus_to_exitcode(status), err


def forked_cli(environment: dict[str, str], *argv: str) -> ForkedCli:
    """Start `paris-avenir ARGV` in a forked child whose environment holds only
    `environment`'s PARIS_AVENIR_ variables (the settings read afresh): two of them at once
    are two processes racing, as two schedulers would. The child never returns into pytest:
    it leaves with os._exit, so nothing of the parent's (connections, files) is closed."""
    import os
    import sys
    import tempfile
    import traceback

    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by ForkedCli.wait
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return ForkedCli(pid, stderr)
    code = 70
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(stderr.fileno(), 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the child exits below
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        for key in [key for key in os.environ if key.startswith("PARIS_AVENIR_")]:
            del os.environ[key]
        os.environ.update(environment)
        from paris_avenir import cli
        from paris_avenir.config import get_settings

        get_settings.cache_clear()
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
