"""The youth's own space."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentYouth
from paris_avenir.db import SessionDep
from paris_avenir.staff.models import CaseloadAssignment, StaffUser
from paris_avenir.web.templating import render

router = APIRouter()


def current_referent(session: SessionDep, youth_id: object) -> StaffUser | None:
    return session.scalar(
        select(StaffUser)
        .join(CaseloadAssignment, CaseloadAssignment.referent_id == StaffUser.id)
        .where(CaseloadAssignment.youth_id == youth_id, CaseloadAssignment.ended_at.is_(None))
    )


@router.get("/mon-espace")
def my_space(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    return render(
        request,
        "youths/my_space.html",
        {
            "youth": youth,
            "referent": current_referent(session, youth.id),
            "franceconnect": request.app.state.oidc["franceconnect"].settings.configured,
        },
    )


@router.get("/mon-espace/acces")
def who_accessed_my_file(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    return render(
        request,
        "youths/accesses.html",
        {
            "youth": youth,
            "accesses": audit.staff_accesses_to(session, youth.id),
        },
    )
