"""The Nu HTML Checker run (tests/html_check.py) reports what it must and fails the run.

A page with a `<form>` inside a `<p>` and an unescaped "<" is reported with its URL, line and
message; htmx's attributes are allowed, any other unknown attribute is not; a run whose
browser tests visited such a page fails, one with clean pages passes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.helpers import npm_installed
from tests.html_check import CheckerMissing, Document, check, vnu_command

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BROKEN_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><title>Mes documents</title></head>
<body hx-boost="true">
<p class="actions">
  <a href="/mon-espace/documents/1" hx-boost="false">Ouvrir</a>
  <form method="post" action="/mon-espace/documents/1/supprimer"><button>Supprimer</button></form>
</p>
<p hx-on::after-request="this.reset()" hx-target="#liste" data-ok="1">Une case masquée (« < 10 »).</p>
<div made-up="1">Inconnu</div>
</body>
</html>
"""
CLEAN_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><title>Statistiques</title></head>
<body hx-boost="true"><p hx-get="/pro" hx-swap="outerHTML">Une case masquée (« &lt; 10 »).</p></body>
</html>
"""


@pytest.fixture(scope="module")
def vnu() -> list[str]:
    npm_installed(PROJECT_ROOT / "tests" / "html_checker", "vnu-jar")
    try:
        return vnu_command()
    except CheckerMissing as missing:
        skip_or_fail(str(missing))
        raise


def test_the_checker_reports_each_error_with_its_page_line_and_message(
    vnu: list[str], tmp_path: Path
) -> None:
    url = "http://127.0.0.1:8000/mon-espace/documents"
    problems = check(
        [
            Document("GET", url, 200, BROKEN_PAGE.encode()),
            Document("GET", "http://127.0.0.1:8000/pro/statistiques", 200, CLEAN_PAGE.encode()),
        ],
        tmp_path,
    )
    reported = [(problem.line, problem.message) for problem in problems]
    assert reported == [
        (8, "No “p” element in scope but a “p” end tag seen."),
        (
            9,
            "Bad character “ ” after “<”. Probable cause: Unescaped “<”. "
            "Try escaping it as “&lt;”.",
        ),
        (10, "Attribute “made-up” not allowed on element “div” at this point."),
    ]
    # Nothing about hx-boost, hx-on::after-request, hx-target nor the clean page.
    assert all(problem.url == f"GET {url} (0001.html)" for problem in problems)
    assert str(problems[0]).startswith(f"GET {url} (0001.html):8: No “p” element in scope")


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, page: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    monkeypatch.delenv("PARIS_AVENIR_TEST_REQUIRE_ALL", raising=False)
    pytester.makepyfile(
        test_inner=textwrap.dedent(
            f"""
            from tests.html_check import RECORDER, Document

            def test_visits_a_page() -> None:
                # What a browser context records when a test opens the page.
                RECORDER.contexts += 1
                RECORDER.add(Document("GET", "http://127.0.0.1:8000/mon-espace/documents",
                                      200, {page!r}.encode()))
            """
        )
    )
    return pytester.runpytest_subprocess("-p", "tests.html_check", "-p", "no:cacheprovider")


def test_a_run_whose_browser_tests_visit_a_broken_page_fails(
    vnu: list[str], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, BROKEN_PAGE)
    # The test itself passed; the run fails and says where.
    result.stdout.fnmatch_lines(
        [
            "*HTML errors (Nu HTML Checker)*",
            "GET http://127.0.0.1:8000/mon-espace/documents (0001.html):8: No “p” element*",
            "*3 HTML error(s) in the 1 pages*the run fails*",
            "*1 passed*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_run_whose_browser_tests_visit_clean_pages_passes(
    vnu: list[str], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, CLEAN_PAGE)
    result.stdout.fnmatch_lines(["*Nu HTML Checker finds no error in the 1 pages*"])
    assert result.ret == pytest.ExitCode.OK
