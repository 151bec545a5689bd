"""The one base of every refusal a person should read: an HTTP status and a message in the
reader's language (translated where it is raised, which is in the reader's locale).

Routes that can do better (show the form again with the message under the field) catch it;
anything they do not catch reaches one handler (web/errors.py), which shows the message on an
error page, or in the toast for htmx, and the request's transaction is rolled back by the
session dependency — never by hand.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A refused action, said to the person: 422 unless the subclass says otherwise."""

    status_code: ClassVar[int] = 422

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Conflict(DomainError):
    """The action came too late: someone (or another tab) already did something else."""

    status_code: ClassVar[int] = 409
