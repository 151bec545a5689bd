"""Compiled templates are shared by every app of the process (web/templating.py), and a
changed template is never served from the old compilation."""

from __future__ import annotations

from fastapi import FastAPI
from jinja2 import DictLoader, Environment

from paris_avenir.web.templating import COMPILED_TEMPLATES, ProcessBytecodeCache


def test_a_changed_template_is_compiled_again() -> None:
    cache = ProcessBytecodeCache()

    def page(source: str) -> str:
        loader = DictLoader({"page.html": source})
        environment = Environment(loader=loader, autoescape=True, bytecode_cache=cache)
        return environment.get_template("page.html").render()

    assert page("Bonjour") == "Bonjour"
    assert page("Bonsoir") == "Bonsoir"  # same name, new source: compiled again
    assert page("Bonjour") == "Bonjour"


def test_every_app_uses_the_shared_compilation(app: FastAPI) -> None:
    assert app.state.templates.bytecode_cache is COMPILED_TEMPLATES
