"""The youth's vault: list, add (photo or file), download, delete."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from paris_avenir.aid_requests import attestation
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentStaff, CurrentYouth, client_ip
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.documents import dates, service
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.documents.validation import MAX_BYTES, RefusedFile
from paris_avenir.kit.dates import paris_today
from paris_avenir.outreach import papers
from paris_avenir.staff.scope import deny, youth_for_staff
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render
from paris_avenir.youths.activity import Activity, record_activity

logger = logging.getLogger(__name__)

router = APIRouter(route_class=Route)


def _store(request: Request) -> DocumentStore:
    store: DocumentStore = request.app.state.document_store
    return store


def _safe_return(raw: str) -> str:
    return raw if raw.startswith("/mon-espace/") and "//" not in raw else "/mon-espace/documents"


def vault_page(
    request: Request,
    session: SessionDep,
    youth_id: object,
    *,
    error: str | None = None,
    chosen_kind: str = "",
    status_code: int = 200,
    back: str = "",
    typed_expiry: str = "",
    date_error: str | None = None,
) -> Response:
    documents = service.youth_documents(session, youth_id)  # type: ignore[arg-type]
    today = paris_today()
    return render(
        request,
        "documents/vault.html",
        {
            "documents": documents,
            "kinds": [(kind.value, service.kind_label(kind)) for kind in DocumentKind],
            "expiring_kinds": [kind.value for kind in service.EXPIRING_KINDS],
            "kind_label": service.kind_label,
            "today": today,
            # Papers that expire within 4 months: what to prepare, and the guichet.
            "expiring": papers.vault_warnings(documents, today),
            "booking_path": papers.BOOKING_PATH,
            "error": error,
            "chosen_kind": chosen_kind,
            "back": back,
            "max_megabytes": MAX_BYTES // 1024 // 1024,
            "typed_expiry": typed_expiry,
            "date_error": date_error,
            "attestations": attestation.attestable(session, youth_id),  # type: ignore[arg-type]
        },
        status_code=status_code,
    )


@router.get("/mon-espace/documents")
def vault(
    request: Request, session: SessionDep, youth: CurrentYouth, retour: str = "", type: str = ""
) -> Response:
    return vault_page(request, session, youth.id, chosen_kind=type, back=retour)


@router.post("/mon-espace/documents")
def upload(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    fichier: Annotated[UploadFile | None, File()] = None,
    type_document: Annotated[str, Form()] = "",
    retour: Annotated[str, Form()] = "",
    # The expiry date comes in three boxes (day, month, year), or as one field.
    expire_le: Annotated[str, Form()] = "",
    expire_le_jour: Annotated[str, Form()] = "",
    expire_le_mois: Annotated[str, Form()] = "",
    expire_le_annee: Annotated[str, Form()] = "",
) -> Response:
    typed_expiry = dates.typed(
        {
            "expire_le": expire_le,
            "expire_le_jour": expire_le_jour,
            "expire_le_mois": expire_le_mois,
            "expire_le_annee": expire_le_annee,
        },
        "expire_le",
    )
    try:
        kind = DocumentKind(type_document)
    except ValueError:
        return vault_page(
            request,
            session,
            youth.id,
            status_code=422,
            back=retour,
            error=_("Choisissez le type de document."),
        )
    # A refused upload: the vault again, with what the youth had chosen.
    refused = partial(
        vault_page, request, session, youth.id, status_code=422, chosen_kind=kind.value, back=retour
    )
    if fichier is None or not fichier.filename:
        return refused(error=_("Choisissez un fichier ou prenez une photo."))
    # Read one byte more than allowed: enough to know it is too big, never the whole file.
    content = fichier.file.read(MAX_BYTES + 1)
    size = fichier.size if fichier.size is not None else len(content)
    expires_on = dates.parse(typed_expiry) if typed_expiry else None
    if typed_expiry and expires_on is None:
        return refused(
            typed_expiry=typed_expiry,
            date_error=_("Écrivez une date qui existe : le jour, le mois, puis l’année."),
        )
    try:
        service.add_document(
            session,
            _store(request),
            youth_id=youth.id,
            kind=kind,
            filename=fichier.filename,
            content=content,
            size=size,
            expires_on=expires_on,
        )
    except RefusedFile as refusal:
        return refused(status_code=refusal.status_code, error=str(refusal))
    record_activity(session, youth, Activity.DOCUMENT, utcnow())
    if kind in service.EXPIRING_KINDS:
        # A newer paper of the kind: the référent's task about the old one is done.
        papers.close_replaced(session, now=utcnow(), youth_id=youth.id)
    return RedirectResponse(
        _safe_return(retour) if retour else "/mon-espace/documents?ajoute=1", status_code=303
    )


def _download(document: Document, request: Request, *, inline: bool = False) -> Response:
    try:
        content = _store(request).read(document.storage_key)
    except FileNotFoundError:
        # A row whose file is gone (a disk restored from an older backup): say so plainly
        # rather than fail; the hourly sweep reports such rows to the operator too.
        logger.error("document %s: its file is missing", document.id)
        raise HTTPException(status_code=410) from None
    headers = {
        "Content-Disposition": f'attachment; filename="{service.download_name(document)}"',
        "Cache-Control": "no-store",
    }
    if inline:
        # A preview on the instruction page (an <img> or an <iframe> of this site only):
        # shown in place, framed by our own pages and nobody else's, running nothing.
        headers["Content-Disposition"] = f'inline; filename="{service.download_name(document)}"'
        headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
        )
        headers["X-Frame-Options"] = "SAMEORIGIN"
    return Response(content, media_type=document.content_type, headers=headers)


@router.get("/mon-espace/documents/{document_id}")
def download_own(
    request: Request, session: SessionDep, youth: CurrentYouth, document_id: str
) -> Response:
    document = service.document_of_youth(session, youth.id, document_id)
    if document is None:
        raise HTTPException(status_code=404)
    return _download(document, request)


@router.post("/mon-espace/documents/{document_id}/supprimer")
def delete_own(
    request: Request, session: SessionDep, youth: CurrentYouth, document_id: str
) -> Response:
    document = service.document_of_youth(session, youth.id, document_id)
    if document is None:
        raise HTTPException(status_code=404)
    if requests_service.document_in_use(session, document.id):
        return vault_page(
            request,
            session,
            youth.id,
            status_code=409,
            error=_("Ce document sert pour une demande envoyée : il ne peut pas être supprimé."),
        )
    requests_service.detach_document(session, document.id)
    service.delete_document(session, _store(request), document)
    return RedirectResponse("/mon-espace/documents?supprime=1", status_code=303)


@router.get("/pro/jeunes/{youth_id}/documents/{document_id}")
def download_for_staff(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    document_id: str,
    apercu: str = "",
) -> Response:
    # The download itself is audited below, with the document it concerns.
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request), action=None)
    document = service.document_of_youth(session, youth.id, document_id)
    if document is None:
        raise deny(
            session,
            staff,
            object_type="document",
            object_id=document_id,
            ip_address=client_ip(request),
        )
    audit.record(
        session,
        "document.download",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="document",
        object_id=document.id,
        ip_address=client_ip(request),
    )
    return _download(document, request, inline=apercu == "1")
