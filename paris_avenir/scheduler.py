"""Background jobs (APScheduler). `serve` runs them inside the web process (the
single-machine default); later, `paris-avenir scheduler` runs them alone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.config import Settings
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels

logger = logging.getLogger(__name__)


def dispatch_outbox(session_factory: sessionmaker[Session], channels: Channels) -> None:
    report = outbox.dispatch_due(session_factory, channels)
    if report.sent or report.retried or report.failed:
        logger.info(
            "outbox: %d sent, %d to retry, %d failed",
            len(report.sent),
            len(report.retried),
            len(report.failed),
        )


def outreach_cycle(session_factory: sessionmaker[Session], settings: Settings) -> None:
    from paris_avenir.outreach.engine import run_cycle

    # Not one transaction: the cycle commits batch by batch, so that sign-ins never wait for
    # the whole cycle (and a crash keeps the batches done).
    with session_factory() as session:
        report = run_cycle(session, base_url=settings.base_url, secret_key=settings.secret_key)
        session.commit()
    if report.contacts or report.tasks or report.escalations:
        logger.info(
            "outreach: %d contacts, %d tasks opened, %d tasks moved to a supervisor",
            len(report.contacts),
            len(report.tasks),
            len(report.escalations),
        )


def propose_interviews(session_factory: sessionmaker[Session], base_url: str) -> None:
    from paris_avenir.appointments.service import propose_follow_up_interviews

    with session_factory.begin() as session:
        count = propose_follow_up_interviews(session, base_url=base_url)
    if count:
        logger.info("follow-up interviews proposed: %d", count)


def purge_expired(session_factory: sessionmaker[Session]) -> None:
    from paris_avenir.retention.service import purge

    with session_factory.begin() as session:
        report = purge(session)
    logger.info("retention purge: %s", report)


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
        args=[session_factory],
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
