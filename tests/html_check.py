"""The Nu HTML Checker (vnu.jar, the W3C validator's engine) on every page the browser tests
visit.

Every context the `browser` fixture opens records the whole pages the platform serves: main
frame navigations and htmx's boosted requests (answered with a whole page), not htmx's
fragments; as the server sent them (not the DOM after scripts ran, which the browser's
parser has already repaired); the first of each method, path, status and shape (a page's
states: an empty list, a list, a form with errors), at most 12 per route. When the run ends,
vnu.jar checks them all in one JVM; an error fails the run, reported with the page, the line
and the message. htmx's attributes (hx-get, hx-boost…) are the only messages filtered out.
The platform's pages are those of a `tests.servers.PlatformServer`; other servers the tests
start (the OpenID provider) are not checked.

Registered by tests/browser/conftest.py; tests/test_html_check.py shows it catches a
`<form>` inside a `<p>` and an unescaped "<". By hand (after `npm ci` in tests/html_checker):
`java -jar tests/html_checker/node_modules/vnu-jar/build/dist/vnu.jar --errors-only FILE`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

HTML_CHECKER = Path(__file__).resolve().parent / "html_checker"
VNU_JAR = HTML_CHECKER / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
# The pages checked are kept (their folder is printed) when the run fails or with this set.
KEEP_ENV = "PARIS_AVENIR_KEEP_TEST_HTML"
# htmx's attributes are not in the HTML standard: only "attribute hx-… not allowed" goes.
HTMX_ATTRIBUTES = r"Attribute “hx-[^”]+” not allowed on element “[^”]+” at this point\."


@dataclass(frozen=True)
class Document:
    """A page as the platform served it."""

    method: str
    url: str
    status: int
    html: bytes

    @property
    def route(self) -> tuple[str, str, int]:
        return (self.method, urlsplit(self.url).path, self.status)

    @property
    def shape(self) -> frozenset[bytes]:
        """Its elements with their classes and attributes, texts and values left out: the
        same page in another state (a list with its items, a form with its errors) has
        another shape, the same page for another youth or in another language the same."""
        parts: set[bytes] = set()
        for tag, attributes in START_TAG.findall(self.html):
            parts.add(tag.lower())
            parts.update(
                tag.lower() + b"[" + name.lower() + b"]" for name in ATTRIBUTE.findall(attributes)
            )
            for classes in CLASS.findall(attributes):
                parts.update(tag.lower() + b"." + name for name in classes.split())
        return frozenset(parts)


START_TAG = re.compile(rb"<([a-zA-Z][\w-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
ATTRIBUTE = re.compile(rb"\s([^\s=/>\"']+)")
CLASS = re.compile(rb"\sclass=\"([^\"]*)\"")
# Each route's first shapes (its states) are checked; a page with many states is capped.
SHAPES_PER_ROUTE = 12


@dataclass(frozen=True)
class Problem:
    url: str
    line: int
    message: str
    extract: str

    def __str__(self) -> str:
        extract = " ".join(self.extract.split())
        return f"{self.url}:{self.line}: {self.message} [{extract}]"


@dataclass
class Recorder:
    """The documents of the run (the first of each route and shape) and the platform's
    origins."""

    origins: set[str] = field(default_factory=set)
    documents: dict[tuple[tuple[str, str, int], frozenset[bytes]], Document] = field(
        default_factory=dict
    )
    shapes: dict[tuple[str, str, int], int] = field(default_factory=dict)
    contexts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, document: Document) -> None:
        with self.lock:
            key = (document.route, document.shape)
            if key not in self.documents and self.shapes.get(document.route, 0) < SHAPES_PER_ROUTE:
                self.documents[key] = document
                self.shapes[document.route] = self.shapes.get(document.route, 0) + 1

    def wants(self, method: str, url: str, status: int) -> bool:
        parts = urlsplit(url)
        return (
            f"{parts.scheme}://{parts.netloc}" in self.origins
            and self.shapes.get((method, parts.path, status), 0) < SHAPES_PER_ROUTE
        )


RECORDER = Recorder()


def record_pages_of(browser: Any) -> Any:
    """Every context this Playwright browser opens from now on records the platform's
    documents (its `new_context` is wrapped)."""
    original = browser.new_context

    @functools.wraps(original)
    def new_context(*args: Any, **kwargs: Any) -> Any:
        context = original(*args, **kwargs)
        RECORDER.contexts += 1
        context.on("requestfinished", _record)
        return context

    browser.new_context = new_context
    return browser


def _is_full_page(request: Any) -> bool:
    """A navigation of the main frame, or an htmx request the platform answers with a whole
    page (boosted links and forms, history restores: web.templating.wants_fragment)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    if headers.get("hx-request") == "true":
        return "true" in (headers.get("hx-boosted"), headers.get("hx-history-restore-request"))
    if request.resource_type != "document":
        return False
    try:
        return request.frame.parent_frame is None
    except Exception:  # a service worker's request has no frame
        return False


def _record(request: Any) -> None:
    if not _is_full_page(request):
        return
    response = request.response()
    if response is None or 300 <= response.status < 400:  # a redirect has no page
        return
    if "text/html" not in response.headers.get("content-type", ""):
        return
    if not RECORDER.wants(request.method, response.url, response.status):
        return
    try:
        html = response.body()
    except Exception:  # the page navigated away and took its body along
        return
    RECORDER.add(Document(request.method, response.url, response.status, html))


def _remember_platform_servers() -> None:
    from tests.servers import PlatformServer

    original = PlatformServer.start
    if getattr(original, "_records_origin", False):
        return

    @functools.wraps(original)
    def start(self: PlatformServer) -> None:
        original(self)
        RECORDER.origins.add(self.url)

    start._records_origin = True  # type: ignore[attr-defined]
    PlatformServer.start = start  # type: ignore[method-assign]


# --- The check ----------------------------------------------------------------------------


class CheckerMissing(Exception):
    pass


def vnu_command() -> list[str]:
    """`java -jar vnu.jar`, installing the jar from tests/html_checker's lock if needed."""
    java = shutil.which("java")
    if java is None:
        raise CheckerMissing("the HTML check needs Java 17+ (apt-get install default-jre)")
    if not VNU_JAR.exists():
        if shutil.which("npm") is None:
            raise CheckerMissing("the HTML check needs npm to install vnu-jar")
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=HTML_CHECKER,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0 or not VNU_JAR.exists():
            raise CheckerMissing(f"npm ci in {HTML_CHECKER} failed: {installed.stderr[-300:]!r}")
    return [java, "-jar", str(VNU_JAR)]


def check(documents: list[Document], directory: Path) -> list[Problem]:
    """The Nu HTML Checker's errors in these documents (one JVM for all of them)."""
    if not documents:
        return []
    files: dict[str, Document] = {}
    for number, document in enumerate(documents, start=1):
        (directory / f"{number:04d}.html").write_bytes(document.html)
        files[f"{number:04d}.html"] = document
    ran = subprocess.run(
        [
            *vnu_command(),
            "--errors-only",
            # Guessing each page's language (a warning at most) is a third of the time.
            "--no-langdetect",
            "--format",
            "json",
            "--stdout",
            "--exit-zero-always",
            "--filterpattern",
            HTMX_ATTRIBUTES,
            *(str(directory / name) for name in files),
        ],
        capture_output=True,
        timeout=600,
        check=False,
    )
    try:
        messages = json.loads(ran.stdout)["messages"]
    except (ValueError, KeyError) as error:
        raise RuntimeError(
            f"vnu.jar gave no report: {ran.stdout[-500:]!r} {ran.stderr[-500:]!r}"
        ) from error
    problems = []
    for message in messages:
        if message.get("type") not in ("error", "non-document-error", "fatal"):
            continue
        url = str(message.get("url", ""))
        name = Path(urlsplit(url).path).name
        source = files.get(name)
        where = f"{source.method} {source.url} ({name})" if source else url
        problems.append(
            Problem(
                where,
                int(message.get("lastLine", message.get("firstLine", 0))),
                str(message.get("message", "")),
                str(message.get("extract", "")),
            )
        )
    return problems


# --- The plugin -------------------------------------------------------------------------------


@dataclass
class Outcome:
    checked: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    missing: str = ""
    directory: Path | None = None


_outcome_key = pytest.StashKey[Outcome]()


def pytest_configure(config: pytest.Config) -> None:
    _remember_platform_servers()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if RECORDER.contexts == 0:
        return
    outcome = Outcome()
    session.config.stash[_outcome_key] = outcome
    documents = list(RECORDER.documents.values())
    directory = Path(tempfile.mkdtemp(prefix="paris-avenir-html-"))
    started = time.monotonic()
    try:
        outcome.problems = check(documents, directory)
    except CheckerMissing as missing:
        outcome.missing = str(missing)
        if os.environ.get("PARIS_AVENIR_TEST_REQUIRE_ALL") == "1":
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        shutil.rmtree(directory, ignore_errors=True)
        return
    outcome.checked, outcome.seconds = len(documents), time.monotonic() - started
    if outcome.problems or not documents:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if outcome.problems or not documents or os.environ.get(KEEP_ENV):
        outcome.directory = directory
    else:
        shutil.rmtree(directory, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    outcome = config.stash.get(_outcome_key, None)
    if outcome is None:
        return
    if outcome.missing:
        terminalreporter.write_line(f"paris-avenir: HTML not checked: {outcome.missing}")
        return
    if not outcome.checked:
        terminalreporter.write_line(
            "paris-avenir: the browser tests opened pages but none of the platform's HTML "
            "was recorded; the run fails",
            red=True,
        )
        return
    if not outcome.problems:
        terminalreporter.write_line(
            f"paris-avenir: the Nu HTML Checker finds no error in the {outcome.checked} pages "
            f"the browser tests visited ({outcome.seconds:.1f} s)"
            + (f"; kept in {outcome.directory}" if outcome.directory else "")
        )
        return
    terminalreporter.write_sep("=", "HTML errors (Nu HTML Checker)", red=True)
    for problem in outcome.problems:
        terminalreporter.write_line(str(problem))
    terminalreporter.write_line(
        f"paris-avenir: {len(outcome.problems)} HTML error(s) in the {outcome.checked} pages "
        f"the browser tests visited (files: {outcome.directory}); the run fails",
        red=True,
    )
