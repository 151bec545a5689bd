"""For route handlers: what a request queued leaves right after its response.

The request commits first, then, as a background task, the message is handed to the outbox
worker, which sends it on threads of its own (a slow provider never holds a thread that
answers pages). Whatever the worker cannot take stays queued for the dispatcher."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from paris_avenir.messaging.outbox import OutboxWorker

# Queues a message in its own transaction and returns its id (None: nothing to send).
QueueStep = Callable[[sessionmaker[Session]], uuid.UUID | None]


class MessageSender:
    def __init__(self, request: Request, background: BackgroundTasks) -> None:
        self._worker: OutboxWorker = request.app.state.outbox_worker
        self._session_factory: sessionmaker[Session] = request.app.state.session_factory
        self._background = background

    def message(self, message_id: uuid.UUID) -> None:
        """A message this request queued and committed."""
        self._background.add_task(self._worker.send_soon, message_id)

    def queued_after(self, queue: QueueStep) -> None:
        """A message queued only after the response, in its own transaction (a sign-in code:
        a known and an unknown destination then answer in the same time)."""
        self._background.add_task(self._queue_then_send, queue)

    async def _queue_then_send(self, queue: QueueStep) -> None:
        message_id = await run_in_threadpool(queue, self._session_factory)
        if message_id is not None:
            await self._worker.send_soon(message_id)


SendSoon = Annotated[MessageSender, Depends()]
