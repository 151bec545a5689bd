from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from tests.factories import create_youth


def test_the_audit_log_is_append_only(session: Session) -> None:
    youth = create_youth(session)
    event = audit.record(session, "youth.view", youth_id=youth.id)
    session.commit()
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("UPDATE audit_event SET action = 'rien'"))
    session.refresh(event)
    assert event.action == "youth.view"


def test_audit_details_refuse_personal_data(session: Session) -> None:
    with pytest.raises(ValueError, match="phone"):
        audit.record(session, "youth.update", detail={"phone": "+33639980012"})


def test_the_trail_outlives_a_deleted_youth(session: Session) -> None:
    youth = create_youth(session)
    audit.record(session, "youth.view", youth_id=youth.id)
    session.delete(youth)
    session.flush()  # no foreign key ties the log to the youth row
