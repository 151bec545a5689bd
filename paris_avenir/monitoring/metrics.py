"""The series of /metrics (prometheus-client), in one registry per application.

Two kinds of series:
- the request latency histogram, counted by this process as it answers (each web worker
  has its own: Prometheus scrapes each instance);
- facts that live in the database, whichever process made them (the outbox that web
  workers fill and the scheduler empties, the tasks, the last outreach cycle the scheduler
  ran): read when Prometheus scrapes, by `DatabaseCollector`, so that every worker answers
  the same figures.

Under `serve --workers N` (or any server of several processes), each worker counts its
requests in prometheus-client's multiprocess files (PROMETHEUS_MULTIPROC_DIR, which `serve`
creates): a scrape, whichever worker answers it, adds up every worker's histogram, so the
latency series are the instance's, not one worker's. The process series (CPU, memory) are
then left out: they would describe whichever worker answered.

No label carries a person's data: routes are templates (`/mon-espace/demandes/{request_id}`,
"<no route>" for what matched none), methods a fixed set, the rest are codes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.config import Settings
from paris_avenir.db import utcnow
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import provider_names, sms_failover
from paris_avenir.outreach import last_cycle
from paris_avenir.staff import tasks
from paris_avenir.youths.models import Channel

logger = logging.getLogger(__name__)

PREFIX = "paris_avenir"
# prometheus-client's own variable: read when the library is first imported, so it is set
# in the environment before the workers start (cli._serve_workers).
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_directory() -> Path | None:
    """Where this process's workers share their counts, if it runs several."""
    directory = os.environ.get(MULTIPROCESS_DIRECTORY)
    return Path(directory) if directory else None


def prepare_multiprocess_directory(directory: Path) -> None:
    """Empty (or create) the directory before the workers start: files left by an earlier
    run would be added to this one's counts (prometheus-client's documentation)."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()


class RequestMetrics:
    """The latency of every request, by method, route template and status."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer a request, in this process (in-flight queue included), by route "
            "template.",
            ["method", "route", "status"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route, str(status)).observe(seconds)


class DatabaseCollector(Collector):
    """The database's facts, computed at each scrape: a handful of grouped queries."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self.session_factory = session_factory
        self.providers = provider_names(settings)
        # Two SMS providers: the active one, the switches, and the SMS series by the provider
        # each message was handed to.
        self.failover = settings.sms_backend == "failover"

    def describe(self) -> Iterable[Metric]:
        # Nothing to check at registration (the default would query the database then).
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}_metrics_database_up",
            "1 when the database answered this scrape's queries, 0 otherwise.",
        )
        now = utcnow()
        failover = sms_failover.ProviderState(self.providers["sms"], 0)
        by_provider: dict[str, tuple[int, int]] = {}
        try:
            with self.session_factory() as session:
                counts = outbox.counts_by_channel(session)
                waited = outbox.oldest_due_wait(session, now)
                overdue = tasks.overdue_counts(session, now)
                cycle = last_cycle.load(session)
                if self.failover:
                    failover = sms_failover.state(session, self.providers["sms"])
                    by_provider = sms_failover.counts_by_provider(session)
        except SQLAlchemyError:
            logger.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._outbox(counts, 0.0 if waited is None else waited.total_seconds())
        if self.failover:
            yield from self._failover(failover, by_provider)
        yield from self._outreach(cycle)
        late = GaugeMetricFamily(
            f"{PREFIX}_staff_tasks_overdue",
            "Open staff tasks past their due date, by kind.",
            labels=["kind"],
        )
        for kind, count in overdue.items():
            late.add_metric([kind.value], count)
        yield late

    def _outbox(
        self, counts: dict[Channel, outbox.ChannelCounts], oldest_due: float
    ) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            f"{PREFIX}_outbox_depth",
            "Messages waiting to leave (queued or being sent, due or held back), by channel.",
            labels=["channel"],
        )
        sent = GaugeMetricFamily(
            f"{PREFIX}_outbox_sent_messages",
            "Messages of the outbox that were sent, by channel and provider (a gauge: rows "
            "leave with a deleted youth file).",
            labels=["channel", "provider"],
        )
        failed = GaugeMetricFamily(
            f"{PREFIX}_outbox_failed_messages",
            "Messages of the outbox that failed for good, by channel and provider.",
            labels=["channel", "provider"],
        )
        for channel, figures in counts.items():
            provider = self.providers[channel]
            depth.add_metric([channel.value], figures.waiting)
            sent.add_metric([channel.value, provider], figures.sent)
            failed.add_metric([channel.value, provider], figures.failed)
        yield depth
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_due_age_seconds",
            "How long the oldest message that may leave now has waited past its time (0: "
            "none); what quiet hours hold back is not late. /readyz fails past 600.",
            value=oldest_due,
        )
        yield sent
        yield failed

    def _failover(
        self, state: sms_failover.ProviderState, by_provider: dict[str, tuple[int, int]]
    ) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            f"{PREFIX}_sms_provider_active",
            "1 for the SMS provider new messages go to, 0 for the other (failover).",
            labels=["provider"],
        )
        for provider in ("brevo", "primotexto"):
            active.add_metric([provider], 1 if state.active == provider else 0)
        yield active
        yield GaugeMetricFamily(
            f"{PREFIX}_sms_failover_switches",
            "How many times the SMS failover switched provider (alert on any increase).",
            value=state.switches,
        )
        sent = GaugeMetricFamily(
            f"{PREFIX}_sms_sent_by_provider",
            "SMS of the outbox sent, by the provider each was handed to.",
            labels=["provider"],
        )
        failed = GaugeMetricFamily(
            f"{PREFIX}_sms_failed_by_provider",
            "SMS of the outbox failed for good, by the provider each was handed to.",
            labels=["provider"],
        )
        for provider in ("brevo", "primotexto"):
            sent_count, failed_count = by_provider.get(provider, (0, 0))
            sent.add_metric([provider], sent_count)
            failed.add_metric([provider], failed_count)
        yield sent
        yield failed

    def _outreach(self, cycle: last_cycle.LastCycle | None) -> Iterator[Metric]:
        if cycle is None:
            return  # no cycle has run yet: no figure rather than a made-up one
        yield GaugeMetricFamily(
            f"{PREFIX}_outreach_last_cycle_duration_seconds",
            "Duration of the last outreach cycle.",
            value=cycle.duration_seconds,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_outreach_last_cycle_contacts",
            "Contacts (SMS, emails, calls to make) the last outreach cycle decided.",
            value=cycle.contacts,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_outreach_last_cycle_tasks",
            "Tasks the last outreach cycle opened for a person.",
            value=cycle.tasks,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_outreach_last_cycle_finished_timestamp_seconds",
            "When the last outreach cycle finished (Unix time): alert when it gets old.",
            value=cycle.finished_at.timestamp(),
        )


class Metrics:
    """What /metrics exposes for one application."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        shared = multiprocess_directory()
        if shared is None:
            self.requests = RequestMetrics(self.registry)
            # CPU, memory, open files of this process (Linux /proc).
            ProcessCollector(registry=self.registry)
        else:
            # The histogram writes to this process's file; the registry reads every file.
            self.requests = RequestMetrics(None)
            MultiProcessCollector(self.registry, path=str(shared))  # type: ignore[no-untyped-call]
        self.registry.register(DatabaseCollector(session_factory, settings))
