"""Who may open which back-office page, declared once and used in route signatures:

    def team(staff: SupervisorStaff) -> Response: ...

The roles behind each permission are `staff.models.PERMISSION_ROLES`, which the menu reads
too (`viewer_staff.may('statistics')`). A signed-in staff member without the role gets a 403
(they know the page exists, and learn nothing about any youth); someone not signed in is
sent to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.db import SessionDep
from paris_avenir.staff.models import Permission, StaffUser
from paris_avenir.staff.scope import youth_for_staff
from paris_avenir.web.routing import in_endpoint_thread
from paris_avenir.youths.models import Youth


def require(permission: Permission) -> Callable[..., Any]:
    def dependency(staff: CurrentStaff) -> StaffUser:
        if not staff.may(permission):
            raise HTTPException(status_code=403)
        return staff

    return in_endpoint_thread(dependency)


def youth_for(permission: Permission) -> Callable[..., Any]:
    """The youth of the path's `youth_id`, for a page that needs `permission`. The scope
    comes first, so another caseload's youth is a 404 with its audit entry for everyone
    (whatever their role); then a youth in scope with the wrong role is a 403."""

    def dependency(
        request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str
    ) -> Youth:
        youth = youth_for_staff(
            session, staff, youth_id, ip_address=client_ip(request), action=None
        )
        if not staff.may(permission):
            raise HTTPException(status_code=403)
        return youth

    return in_endpoint_thread(dependency)


CaseloadStaff = Annotated[StaffUser, Depends(require(Permission.CASELOAD))]
TaskStaff = Annotated[StaffUser, Depends(require(Permission.TASKS))]
CounterStaff = Annotated[StaffUser, Depends(require(Permission.COUNTER))]
CalendarStaff = Annotated[StaffUser, Depends(require(Permission.CALENDAR))]
SupervisorStaff = Annotated[StaffUser, Depends(require(Permission.TEAM))]
StatisticsStaff = Annotated[StaffUser, Depends(require(Permission.STATISTICS))]
ImportStaff = Annotated[StaffUser, Depends(require(Permission.IMPORT))]
AdminStaff = Annotated[StaffUser, Depends(require(Permission.ADMINISTRATION))]

# A youth reached through the path's youth_id, by someone who may act on them this way.
CounterYouth = Annotated[Youth, Depends(youth_for(Permission.COUNTER))]
TeamYouth = Annotated[Youth, Depends(youth_for(Permission.TEAM))]
