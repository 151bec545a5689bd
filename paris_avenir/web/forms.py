"""The submitted form as a dependency, so that handlers which touch the database stay plain
`def` (run in the thread pool) instead of `async def` (which would run their synchronous
database calls on the event loop and freeze every other request during a lock wait)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]
