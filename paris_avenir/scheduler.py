"""Background jobs (APScheduler). `serve` runs them inside the web process (the
single-machine default); later, `paris-avenir scheduler` runs them alone."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.config import Settings
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels

if TYPE_CHECKING:
    from paris_avenir.outreach.engine import CycleReport

logger = logging.getLogger(__name__)

OUTBOX_BATCH = 100


def dispatch_outbox(session_factory: sessionmaker[Session], channels: Channels) -> None:
    """Batch after batch while batches come full (a first outreach cycle's tens of
    thousands leave at the provider's pace, not one batch per interval)."""
    sent = retried = failed = 0
    while True:
        report = outbox.dispatch_due(session_factory, channels, limit=OUTBOX_BATCH)
        sent, retried = sent + len(report.sent), retried + len(report.retried)
        failed += len(report.failed)
        if report.claimed < OUTBOX_BATCH:
            break
    if sent or retried or failed:
        logger.info("outbox: %d sent, %d to retry, %d failed", sent, retried, failed)


def outreach_cycle(session_factory: sessionmaker[Session], settings: Settings) -> None:
    from paris_avenir.outreach.engine import run_cycle

    # Not one transaction: the cycle commits batch by batch, so that sign-ins never wait for
    # the whole cycle (and a crash keeps the batches done).
    started = time.perf_counter()
    with session_factory() as session:
        report = run_cycle(session, base_url=settings.base_url, secret_key=settings.secret_key)
        session.commit()
    if not report.skipped_locked:
        _record_cycle(session_factory, time.perf_counter() - started, report)
    if report.contact_count or report.tasks or report.escalations:
        logger.info(
            "outreach: %d contacts, %d tasks opened, %d tasks moved to a supervisor",
            report.contact_count,
            len(report.tasks),
            len(report.escalations),
        )


def _record_cycle(
    session_factory: sessionmaker[Session], duration: float, report: CycleReport
) -> None:
    """The figures /metrics shows, after the cycle's own commit: failing to write them
    never undoes the cycle."""
    from paris_avenir.outreach import last_cycle

    figures = last_cycle.LastCycle(
        finished_at=datetime.now(UTC),
        duration_seconds=round(duration, 3),
        contacts=report.contact_count,
        tasks=len(report.tasks),
    )
    try:
        with session_factory.begin() as session:
            last_cycle.record(session, figures)
    except SQLAlchemyError:
        logger.warning("outreach: the last cycle's figures could not be recorded", exc_info=True)


def delivery_fallback(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """What did not reach a youth, followed up on the other channel (outreach/delivery.py).
    Receipts count only when the SMS webhook is set up (without it, no SMS is ever
    "delivered")."""
    from paris_avenir.outreach import delivery

    with session_factory.begin() as session:
        report = delivery.run(
            session, base_url=settings.base_url, receipts=bool(settings.sms_webhook_token)
        )
    if report.queued or report.tasks:
        logger.info(
            "delivery fallback: %d messages followed up, %d numbers to check",
            report.queued,
            len(report.tasks),
        )


def propose_interviews(session_factory: sessionmaker[Session], base_url: str) -> None:
    from paris_avenir.appointments.service import propose_follow_up_interviews

    with session_factory.begin() as session:
        count = propose_follow_up_interviews(session, base_url=base_url)
    if count:
        logger.info("follow-up interviews proposed: %d", count)


def purge_expired(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """The nightly retention (retention.files.nightly): what has served its purpose, then
    the youth files 2 years after the last contact (counted every night, anonymised once an
    admin switched it on)."""
    from paris_avenir.documents.storage import DocumentStore
    from paris_avenir.kit.crypto import build_cipher
    from paris_avenir.retention import files

    files.nightly(session_factory, DocumentStore(settings.upload_dir, build_cipher(settings)))


def sweep_documents(session_factory: sessionmaker[Session], settings: Settings) -> None:
    from paris_avenir.documents.service import sweep_orphans
    from paris_avenir.documents.storage import DocumentStore
    from paris_avenir.kit.crypto import build_cipher

    store = DocumentStore(settings.upload_dir, build_cipher(settings))
    with session_factory() as session:
        report = sweep_orphans(session, store, now=datetime.now(UTC))
    if report.removed or report.moved_into_place:
        logger.info(
            "documents: %d orphan files removed, %d committed files moved into place",
            report.removed,
            report.moved_into_place,
        )
    if report.dangling:
        logger.error(
            "documents: %d rows whose file is missing: %s",
            len(report.dangling),
            ", ".join(str(document_id) for document_id in report.dangling[:20]),
        )


def build_scheduler(
    settings: Settings, session_factory: sessionmaker[Session], channels: Channels
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="Europe/Paris")
    scheduler.add_job(
        dispatch_outbox,
        "interval",
        seconds=settings.outbox_interval_seconds,
        args=[session_factory, channels],
        id="outbox",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        outreach_cycle,
        "interval",
        minutes=30,
        args=[session_factory, settings],
        id="outreach",
        max_instances=1,
        coalesce=True,
        # At start too: after a restart or a deployment, nothing waits half an hour (the
        # cycle is idempotent, and several schedulers share it through a lock).
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        delivery_fallback,
        "interval",
        minutes=5,
        args=[session_factory, settings],
        id="delivery_fallback",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        propose_interviews,
        "cron",
        hour=10,
        minute=0,
        args=[session_factory, settings.base_url],
        id="follow_up_interviews",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        purge_expired,
        "cron",
        hour=3,
        minute=30,
        args=[session_factory, settings],
        id="retention_purge",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        sweep_documents,
        "interval",
        hours=1,
        args=[session_factory, settings],
        id="document_sweep",
        max_instances=1,
        coalesce=True,
    )
    return scheduler
