"""The Observatoire's statistics: supervisors and admins, aggregates only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paris_avenir.aid_requests.service import status_label
from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import client_ip
from paris_avenir.auth.permissions import StatisticsStaff
from paris_avenir.db import SessionDep
from paris_avenir.staff.models import StaffUser
from paris_avenir.stats import service
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render

router = APIRouter(route_class=Route, prefix="/pro")


@router.get("/statistiques")
def statistics_page(request: Request, session: SessionDep, staff: StatisticsStaff) -> Response:
    stats = service.compute(session)
    return render(
        request,
        "stats/statistics.html",
        {
            "staff": staff,
            "stats": stats,
            "bars": service.bars(stats),
            "threshold": service.THRESHOLD,
            "status_label": status_label,
        },
    )


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(request: Request, session: SessionDep, staff: StaffUser, kind: str) -> Response:
    audit.record(
        session,
        "stats.export",
        actor_staff_id=staff.id,
        ip_address=client_ip(request),
        detail={"format": kind},
    )
    stats = service.compute(session)
    name = f"paris-avenir-statistiques-{stats.as_of.isoformat()}.{kind}"
    content, media_type = (
        (service.to_csv(stats), "text/csv; charset=utf-8")
        if kind == "csv"
        else (service.to_xlsx(stats), XLSX)
    )
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/statistiques.csv")
def statistics_csv(request: Request, session: SessionDep, staff: StatisticsStaff) -> Response:
    """For a French Excel or LibreOffice: UTF-8 with BOM, `;`, decimal comma."""
    return _download(request, session, staff, "csv")


@router.get("/statistiques.xlsx")
def statistics_xlsx(request: Request, session: SessionDep, staff: StatisticsStaff) -> Response:
    """The same table as a workbook: numbers and dates typed, header row frozen."""
    return _download(request, session, staff, "xlsx")
