"""Messages with the référent: read receipts, attachments, notifications in the right hours."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.documents.models import DocumentKind
from paris_avenir.messaging import service
from paris_avenir.messaging.models import Message, MessageThread, OutboxMessage
from paris_avenir.staff.models import StaffUser
from paris_avenir.youths.models import Channel, Youth
from tests.factories import assign, create_document, create_staff, create_youth
from tests.helpers import post_form, sign_in_as
from tests.querycount import CountQueries


@pytest.fixture
def referent(session: Session) -> StaffUser:
    return create_staff(session, full_name="Awa Diallo")


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(session, first_name="Nour", phone="+33639980077", email="nour@example.org")
    assign(session, youth, referent)
    session.commit()
    return youth


def staff_message(session: Session, youth: Youth, referent: StaffUser, body: str) -> MessageThread:
    thread = service.general_thread(session, youth.id)
    service.post_message(session, thread, body=body, author_staff_id=referent.id)
    session.commit()
    return thread


async def test_a_youth_reads_a_message_and_answers(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    thread = staff_message(session, youth, referent, "Bonjour Nour, avez-vous reçu votre carte ?")
    sign_in_as(client, app, session, youth=youth)
    assert "1 nouveau message" in (await client.get("/mon-espace")).text
    listing = await client.get("/mon-espace/messages")
    assert "1 nouveau" in listing.text
    page = await client.get(f"/mon-espace/messages/{thread.id}")
    assert "avez-vous reçu votre carte ?" in page.text
    response = await post_form(
        client, f"/mon-espace/messages/{thread.id}", {"message": "Oui, merci !"}
    )
    assert response.status_code == 303
    page = await client.get(f"/mon-espace/messages/{thread.id}")
    assert "Oui, merci !" in page.text and "Envoyé" in page.text

    session.expire_all()
    messages = service.thread_messages(session, thread.id)
    assert messages[0].read_at is not None  # the référent's message, read by the youth
    service.mark_read(session, thread, by_youth=False)  # the référent opens the conversation
    session.commit()
    session.expire_all()
    assert ">Lu<" in (await client.get(f"/mon-espace/messages/{thread.id}")).text


async def test_an_empty_message_is_refused_and_nothing_is_lost(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    sign_in_as(client, app, session, youth=youth)
    thread = service.general_thread(session, youth.id)
    session.commit()
    response = await post_form(client, f"/mon-espace/messages/{thread.id}", {"message": "   "})
    assert response.status_code == 422 and "Écrivez votre message" in response.text
    assert session.scalars(select(Message)).all() == []


async def test_only_the_youths_own_documents_can_be_attached(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    mine = create_document(session, app.state.document_store, youth, DocumentKind.BANK_DETAILS)
    theirs = create_document(
        session, app.state.document_store, create_youth(session), DocumentKind.IDENTITY
    )
    thread = service.general_thread(session, youth.id)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    await post_form(
        client,
        f"/mon-espace/messages/{thread.id}",
        {"message": "Voici mon RIB", "documents": [str(mine.id), str(theirs.id)]},
    )
    message = service.thread_messages(session, thread.id)[0]
    assert [document.id for document in message.attachments] == [mine.id]


async def test_a_referent_message_notifies_the_youth_once_and_not_at_night(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    # Friday 22:30 in Paris: the SMS waits for Saturday 9:00.
    with time_machine.travel(datetime(2026, 11, 27, 21, 30, tzinfo=UTC), tick=False):
        sign_in_as(client, app, session, staff=referent)
        for text in ("Bonjour Nour", "Je vous rappelle demain."):
            response = await post_form(
                client, f"/pro/jeunes/{youth.id}/messages", {"message": text}
            )
            assert response.headers["location"].startswith(f"/pro/jeunes/{youth.id}")
    notifications = session.scalars(select(OutboxMessage)).all()
    assert len(notifications) == 1  # one per unread batch
    sms = notifications[0]
    assert sms.channel is Channel.SMS and sms.recipient == youth.phone
    assert sms.next_attempt_at == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # 9:00 in Paris
    assert "nouveau message" in sms.body_text and "Bonjour Nour" not in sms.body_text


async def test_the_preferred_channel_is_used_and_an_unreachable_one_avoided(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    from paris_avenir.messaging import notifications

    youth.preferred_channel = Channel.EMAIL
    assert notifications.reachable_channel(youth) is Channel.EMAIL
    youth.email_unreachable_at = datetime(2026, 1, 1, tzinfo=UTC)
    assert notifications.reachable_channel(youth) is Channel.SMS
    youth.phone_unreachable_at = datetime(2026, 1, 1, tzinfo=UTC)
    assert notifications.reachable_channel(youth) is None


async def test_another_caseload_cannot_write_to_the_youth(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    stranger = create_staff(session)
    session.commit()
    sign_in_as(client, app, session, staff=stranger)
    response = await post_form(client, f"/pro/jeunes/{youth.id}/messages", {"message": "Bonjour"})
    assert response.status_code == 404
    assert session.scalars(select(Message)).all() == []


async def test_a_long_conversation_costs_no_more_queries(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    referent: StaffUser,
    count_queries: CountQueries,
) -> None:
    thread = service.general_thread(session, youth.id)
    sign_in_as(client, app, session, youth=youth)

    async def queries_after(count: int) -> int:
        for number in range(count):
            service.post_message(
                session, thread, body=f"Message {number}", author_staff_id=referent.id
            )
        session.commit()
        with count_queries() as counter:
            assert (await client.get(f"/mon-espace/messages/{thread.id}")).status_code == 200
        return counter.count

    assert await queries_after(2) == await queries_after(20)


async def test_the_youth_file_shows_the_conversation_s_last_30_messages_in_order(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    thread = service.general_thread(session, youth.id)
    with time_machine.travel(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)) as clock:
        for number in range(1, 36):
            service.post_message(
                session, thread, body=f"Message numéro {number:02d}", author_staff_id=referent.id
            )
            clock.shift(60)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = (await client.get(f"/pro/jeunes/{youth.id}")).text
    shown = [f"Message numéro {number:02d}" in page for number in range(1, 36)]
    assert shown == [False] * 5 + [True] * 30  # the 30 newest, none of the 5 oldest
    assert page.index("Message numéro 06") < page.index("Message numéro 35")  # oldest first
