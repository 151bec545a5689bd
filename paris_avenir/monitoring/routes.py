"""/metrics, for the City's Prometheus: only with the bearer token of
PARIS_AVENIR_METRICS_TOKEN (none set: the page does not exist)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client.exposition import choose_encoder

from paris_avenir.config import Settings
from paris_avenir.kit.crypto import constant_time_equals
from paris_avenir.monitoring.metrics import Metrics
from paris_avenir.web.routing import Route

router = APIRouter(route_class=Route)


@router.get("/metrics", include_in_schema=False)
def metrics_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.metrics_token:
        raise HTTPException(status_code=404)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not constant_time_equals(
        given.strip(), settings.metrics_token
    ):
        raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    metrics: Metrics = request.app.state.metrics
    # The format Prometheus asks for (OpenMetrics or the classic text), as the library
    # negotiates it.
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(metrics.registry), media_type=content_type)
