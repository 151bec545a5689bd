"""/metrics, as Prometheus reads it: after an outreach cycle (the scheduler's job) and a
youth's sign-in, every series says what happened, parsed by prometheus-client's own text
parser; without the token, nothing is said."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir import scheduler
from paris_avenir.config import Settings
from paris_avenir.db import utcnow
from paris_avenir.messaging.models import OutboxStatus
from paris_avenir.monitoring.metrics import DatabaseCollector
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.staff.models import TaskKind
from paris_avenir.youths.models import Channel
from tests.factories import assign, create_outbox_message, create_staff, create_task, create_youth
from tests.helpers import code_in, last_sms, post_form

TOKEN = "metrics-token-" + "m" * 32
SIGN_IN_PHONE = "+33639980077"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": TOKEN})


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for sample, labels in samples if sample == name}


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def route_templates(app: FastAPI) -> set[str]:
    return {str(route.path) for route in iter_route_contexts(app.routes) if route.path}


async def test_metrics_after_an_outreach_cycle_and_a_sign_in(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    now = utcnow()
    referent = create_staff(session)
    quiet = create_youth(
        session,
        last_activity_at=now - timedelta(days=30),
        activated_at=now - timedelta(days=400),
    )
    assign(session, quiet, referent)
    signing_in = create_youth(session, phone=SIGN_IN_PHONE, last_activity_at=now)
    assign(session, signing_in, referent)
    # An email that failed for good, and an SMS due five minutes ago, still waiting.
    create_outbox_message(session, channel=Channel.EMAIL, status=OutboxStatus.FAILED)
    create_outbox_message(session, now=now - timedelta(minutes=5))
    session.commit()

    scheduler.outreach_cycle(session_factory, settings)
    contacts = session.scalar(select(func.count()).select_from(OutreachAttempt))
    assert contacts == 1, "the quiet youth gets the first step, nobody else"

    asked = await post_form(client, "/connexion", {"destination": "06 39 98 00 77"})
    assert asked.status_code == 303
    signed_in = await post_form(
        client, "/connexion/code", {"code": code_in(last_sms(settings)["text"])}
    )
    assert signed_in.headers["location"] == "/mon-espace"
    assert (await client.get("/mon-espace")).status_code == 200
    assert (await client.get(f"/mon-espace/demandes/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/nulle-part/0639980077")).status_code == 404
    await client.request("X0639980077", "/")

    # Tasks: one call overdue since last week, one due later today (not late).
    create_task(session, quiet, TaskKind.PHONE_YOUTH, now=now - timedelta(days=7))
    create_task(session, signing_in, TaskKind.DOCUMENTS_RECEIVED, now=now)
    session.commit()

    samples = await scrape(client)
    latency = "paris_avenir_http_request_duration_seconds"
    # Per route template, never the requested path (its id, the number in the unknown path).
    for route, status, method in [
        ("/connexion", "303", "POST"),
        ("/connexion/code", "303", "POST"),
        ("/mon-espace", "200", "GET"),
        ("/mon-espace/demandes/{request_id}", "404", "GET"),
    ]:
        labels = {"method": method, "route": route, "status": status}
        assert value(samples, f"{latency}_count", **labels) == 1, route
        assert 0 < value(samples, f"{latency}_sum", **labels) < 10
        assert value(samples, f"{latency}_bucket", **labels, le="+Inf") == 1
    routes = label_values(samples, f"{latency}_count", "route")
    assert routes <= route_templates(app) | {"<no route>"}
    assert "<no route>" in routes
    assert label_values(samples, f"{latency}_count", "method") <= {"GET", "POST", "OTHER"}
    assert not [key for key in samples if any("0639980077" in v for _, v in key[1])]

    # The outbox: the outreach SMS and the late one wait; the code left by SMS ("file"
    # provider in tests); the email failed.
    assert value(samples, "paris_avenir_outbox_depth", channel="sms") == 2
    assert value(samples, "paris_avenir_outbox_depth", channel="email") == 0
    oldest = value(samples, "paris_avenir_outbox_oldest_due_age_seconds")
    assert 300 <= oldest < 360
    assert value(samples, "paris_avenir_outbox_sent_messages", channel="sms", provider="file") == 1
    assert (
        value(samples, "paris_avenir_outbox_sent_messages", channel="email", provider="smtp") == 0
    )
    assert (
        value(samples, "paris_avenir_outbox_failed_messages", channel="email", provider="smtp") == 1
    )
    assert (
        value(samples, "paris_avenir_outbox_failed_messages", channel="sms", provider="file") == 0
    )

    # The cycle ran in the scheduler's job: its figures came through the database.
    assert value(samples, "paris_avenir_outreach_last_cycle_contacts") == 1
    assert value(samples, "paris_avenir_outreach_last_cycle_tasks") == 0
    assert 0 < value(samples, "paris_avenir_outreach_last_cycle_duration_seconds") < 30
    finished = value(samples, "paris_avenir_outreach_last_cycle_finished_timestamp_seconds")
    assert abs(finished - utcnow().timestamp()) < 60

    assert value(samples, "paris_avenir_staff_tasks_overdue", kind=TaskKind.PHONE_YOUTH.value) == 1
    assert (
        sum(
            value(samples, "paris_avenir_staff_tasks_overdue", kind=kind.value) for kind in TaskKind
        )
        == 1
    )
    assert value(samples, "paris_avenir_metrics_database_up") == 1


async def test_no_cycle_yet_means_no_cycle_figures(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    assert value(samples, "paris_avenir_outbox_oldest_due_age_seconds") == 0
    assert not [name for name, _ in samples if name.startswith("paris_avenir_outreach_")]


async def test_openmetrics_when_prometheus_asks_for_it(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/metrics",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        },
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    parsed = openmetrics_families(response.text)  # type: ignore[no-untyped-call]
    families = {family.name: family for family in parsed}
    assert families["paris_avenir_metrics_database_up"].samples[0].value == 1
    assert families["paris_avenir_outbox_depth"].type == "gauge"


async def test_metrics_need_the_token(app: FastAPI, client: httpx.AsyncClient) -> None:
    refusals = [
        await client.get("/metrics"),
        await client.get("/metrics", headers={"Authorization": "Bearer wrong"}),
        await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}),
        await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}),
        await client.get("/metrics", headers={"Authorization": TOKEN}),
        await client.get("/metrics", headers={b"Authorization": "Bearer é".encode()}),
    ]
    for response in refusals:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "paris_avenir_" not in response.text and TOKEN not in response.text

    # No token set: the page does not exist, whatever is presented.
    app.state.settings = app.state.settings.model_copy(update={"metrics_token": ""})
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert "paris_avenir_" not in response.text


def test_a_database_that_does_not_answer_reads_as_down(settings: Settings) -> None:
    unreachable = create_engine("sqlite:////nonexistent-directory/metrics.sqlite3")
    families = list(DatabaseCollector(sessionmaker(bind=unreachable), settings).collect())
    assert [(family.name, [sample.value for sample in family.samples]) for family in families] == [
        ("paris_avenir_metrics_database_up", [0])
    ]
