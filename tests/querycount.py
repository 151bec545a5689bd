"""Counting the SQL statements a request runs, so pages can assert a bound."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field


@dataclass
class QueryCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


CountQueries = Callable[[], AbstractContextManager[QueryCounter]]
