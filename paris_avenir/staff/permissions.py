"""Who may open which back-office page, declared once and used in route signatures:

    def team(staff: SupervisorStaff) -> Response: ...

A signed-in staff member without the role gets a 403 (they know the page exists); someone
not signed in is sent to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException

from paris_avenir.auth.dependencies import CurrentStaff
from paris_avenir.staff.models import TASK_ROLES, StaffRole, StaffUser


def require_roles(*roles: StaffRole) -> Callable[[StaffUser], StaffUser]:
    allowed = frozenset(roles)

    def dependency(staff: CurrentStaff) -> StaffUser:
        if staff.role not in allowed:
            raise HTTPException(status_code=403)
        return staff

    return dependency


TaskStaff = Annotated[StaffUser, Depends(require_roles(*TASK_ROLES))]
SupervisorStaff = Annotated[StaffUser, Depends(require_roles(StaffRole.SUPERVISOR))]
