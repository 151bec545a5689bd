"""The Observatoire's statistics: supervisors and admins, aggregates only."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.db import SessionDep
from paris_avenir.staff.models import StaffRole
from paris_avenir.stats import service
from paris_avenir.web.templating import render

router = APIRouter(prefix="/pro")
ALLOWED = {StaffRole.SUPERVISOR, StaffRole.ADMIN}


@router.get("/statistiques")
def statistics_page(request: Request, session: SessionDep, staff: CurrentStaff) -> Response:
    if staff.role not in ALLOWED:
        raise HTTPException(status_code=403)
    stats = service.compute(session)
    return render(
        request,
        "stats/statistics.html",
        {
            "staff": staff,
            "stats": stats,
            "bars": service.bars(stats),
            "threshold": service.THRESHOLD,
        },
    )


@router.get("/statistiques.csv")
def statistics_csv(request: Request, session: SessionDep, staff: CurrentStaff) -> Response:
    if staff.role not in ALLOWED:
        raise HTTPException(status_code=403)
    audit.record(session, "stats.export", actor_staff_id=staff.id, ip_address=client_ip(request))
    return Response(
        service.to_csv(service.compute(session)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="paris-avenir-statistiques.csv"'},
    )
