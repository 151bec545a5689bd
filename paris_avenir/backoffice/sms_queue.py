"""The supervisors' queue of SMS replies that matched no single youth (messaging.inbound):
what each supervisor may see of it. A reply from a number shared by several youths shows
only the candidates of the supervisor's scope (and not at all to a supervisor who has none
of them); a reply from nobody's number shows its text and the number's last two digits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.messaging import inbound
from paris_avenir.messaging.models import InboundSms
from paris_avenir.staff.models import StaffUser
from paris_avenir.staff.scope import youth_scope
from paris_avenir.youths.models import Youth


@dataclass(frozen=True)
class QueuedReply:
    item: InboundSms
    candidates: list[Youth]  # those the supervisor may see; empty: an unknown number

    @property
    def number(self) -> str:
        return inbound.masked_number(self.item.sender_last_digits)

    @property
    def received_at(self) -> datetime:
        return self.item.received_at


def in_scope(session: Session, staff: StaffUser, ids: set[uuid.UUID]) -> dict[uuid.UUID, Youth]:
    if not ids:
        return {}
    return {
        youth.id: youth
        for youth in session.scalars(select(Youth).where(Youth.id.in_(ids), youth_scope(staff)))
    }


def visible(staff: StaffUser, item: InboundSms, reachable: dict[uuid.UUID, Youth]) -> bool:
    wanted = inbound.candidates(item)
    return not wanted or bool(wanted & reachable.keys())


def queue_for(session: Session, staff: StaffUser) -> list[QueuedReply]:
    items = inbound.waiting(session)
    reachable = in_scope(
        session, staff, {youth_id for item in items for youth_id in inbound.candidates(item)}
    )
    return [
        QueuedReply(
            item,
            sorted(
                (reachable[i] for i in inbound.candidates(item) if i in reachable),
                key=lambda youth: (youth.last_name, youth.first_name),
            ),
        )
        for item in items
        if visible(staff, item, reachable)
    ]
