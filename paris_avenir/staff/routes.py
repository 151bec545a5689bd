"""The staff side (back office). Every route that takes a youth id goes through
auth.scope, which answers 404 (and audits) outside the caller's scope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.auth.scope import youth_for_staff, youth_scope
from paris_avenir.db import SessionDep
from paris_avenir.web.templating import render
from paris_avenir.youths.models import Youth

router = APIRouter(prefix="/pro")
CASELOAD_PAGE_SIZE = 50


@router.get("")
def staff_home(request: Request, session: SessionDep, staff: CurrentStaff) -> Response:
    youths = session.scalars(
        select(Youth)
        .where(youth_scope(staff))
        .order_by(Youth.last_activity_at.asc().nulls_first(), Youth.last_name)
        .limit(CASELOAD_PAGE_SIZE)
    ).all()
    return render(request, "staff/home.html", {"staff": staff, "youths": youths})


@router.get("/jeunes/{youth_id}")
def youth_file(
    request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str
) -> Response:
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request))
    return render(request, "staff/youth_file.html", {"staff": staff, "youth": youth})
