"""Mes droits and Mes demandes: the catalogue explained, requests in a few steps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from paris_avenir.aid_requests import attestation, service
from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.kinds.base import AidKind, FieldKind, FormField, RequiredDocument
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.aid_requests.national_rights import national_rights
from paris_avenir.auth.dependencies import CurrentYouth
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.documents import dates
from paris_avenir.documents import service as documents
from paris_avenir.documents.models import DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.documents.validation import MAX_BYTES, RefusedFile
from paris_avenir.kit.dates import paris_today
from paris_avenir.web.forms import FormDep
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route, see_other
from paris_avenir.web.templating import render
from paris_avenir.youths.activity import Activity, record_activity

router = APIRouter(route_class=Route, prefix="/mon-espace")
# Public: a landlord, a bank or the CAF checks an attestation without an account.
verification_router = APIRouter(route_class=Route, prefix="/verifier")


def _today() -> Any:
    return paris_today()


def _kind_or_404(code: str) -> AidKind:
    try:
        return catalogue.kind(AidCode(code))
    except ValueError:
        raise HTTPException(status_code=404) from None


def _own_request(session: SessionDep, youth_id: Any, request_id: str) -> AidRequest:
    request = service.request_of_youth(session, youth_id, request_id)
    if request is None:
        raise HTTPException(status_code=404)
    return request


# --- Documents added inside a request --------------------------------------------------

# Paper documents a youth may rather photograph: the row offers the camera too.
CAMERA_KINDS = {
    DocumentKind.IDENTITY.value,
    DocumentKind.RESIDENCE_PERMIT.value,
    DocumentKind.PHOTO.value,
}


def _document_rows(
    session: SessionDep, youth_id: Any, aid_request: AidRequest, needed_list: list[RequiredDocument]
) -> dict[str, Any]:
    """What the documents form shows: per needed document, the vault's candidates and the
    ones ticked (those attached, else the newest: nothing is asked twice)."""
    vault = documents.youth_documents(session, youth_id)
    attached = service.attached_document_ids(session, aid_request)
    rows = []
    for needed in needed_list:
        candidates = [doc for doc in vault if doc.kind is needed.kind]
        chosen = {doc.id for doc in candidates if doc.id in attached}
        if not chosen and candidates and not attached:
            chosen = {candidates[0].id}
        rows.append((needed, candidates, chosen))
    return {
        "rows": rows,
        "document_label": documents.kind_label,
        "today": _today(),
        "expiring": [kind.value for kind in documents.EXPIRING_KINDS],
        "camera_kinds": CAMERA_KINDS,
        "max_megabytes": MAX_BYTES // 1024 // 1024,
    }


def _add_uploads(
    request: Request, session: SessionDep, youth: Any, kinds: list[DocumentKind], form: FormData
) -> tuple[list[str], dict[str, str]]:
    """Stores every file chosen in the form's rows (into the vault, for the next time too).
    Returns the new documents' ids and, per row, why a file was refused (with, under
    "typed:<name>", the dates typed, shown again to be corrected)."""
    store: DocumentStore = request.app.state.document_store
    added: list[str] = []
    errors: dict[str, str] = {}
    for kind in kinds:
        upload = next(
            (
                value
                for value in (form.get(f"fichier_{kind.value}"), form.get(f"photo_{kind.value}"))
                if isinstance(value, UploadFile) and value.filename
            ),
            None,
        )
        typed = dates.typed(form, f"expire_{kind.value}")
        expires_on = dates.parse(typed) if typed else None
        if typed and expires_on is None:
            errors[f"typed:expire_{kind.value}"] = typed
            errors[f"expire_{kind.value}"] = _(
                "Écrivez une date qui existe : le jour, le mois, puis l’année."
            )
            if upload is not None:
                errors[kind.value] = _(
                    "Le fichier n’est pas encore ajouté : corrigez la date, "
                    "puis choisissez-le encore."
                )
            continue
        if upload is None or upload.filename is None:
            continue
        # One byte more than allowed: enough to know it is too big, never the whole file.
        content = upload.file.read(MAX_BYTES + 1)
        try:
            document = documents.add_document(
                session,
                store,
                youth_id=youth.id,
                kind=kind,
                filename=upload.filename,
                content=content,
                size=upload.size if upload.size is not None else len(content),
                expires_on=expires_on,
            )
        except RefusedFile as refusal:
            errors[kind.value] = str(refusal)
            continue
        added.append(str(document.id))
    if added:
        record_activity(session, youth, Activity.DOCUMENT, utcnow())
    return added, errors


# --- Mes droits ---------------------------------------------------------------------------


@router.get("/droits")
def rights(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    parameters = service.aid_parameters(session)
    today = _today()
    aids = [
        (
            kind,
            kind.eligibility(youth, parameters.get(kind.code, {}), today),
            kind.gives(parameters.get(kind.code, {})),
        )
        for kind in catalogue.all_kinds()
    ]
    return render(
        request,
        "aid_requests/rights.html",
        {
            "aids": aids,
            "national_rights": national_rights(),
        },
    )


@router.get("/droits/{code}")
def aid_detail(request: Request, session: SessionDep, youth: CurrentYouth, code: str) -> Response:
    kind = _kind_or_404(code)
    parameters = service.aid_parameters(session).get(kind.code, {})
    return render(
        request,
        "aid_requests/aid.html",
        {
            "kind": kind,
            "gives": kind.gives(parameters),
            "eligibility": kind.eligibility(youth, parameters, _today()),
            "document_label": documents.kind_label,
            "is_open": kind.code in service.open_aid_codes(session),
            "error": None,
        },
    )


# --- Mes demandes -------------------------------------------------------------------------


@router.post("/demandes")
def start(
    request: Request, session: SessionDep, youth: CurrentYouth, aide: Annotated[str, Form()] = ""
) -> Response:
    kind = _kind_or_404(aide)
    try:
        aid_request = service.start_request(session, youth, kind.code)
    except service.RequestError as error:
        return render(
            request,
            "aid_requests/aid.html",
            {
                "kind": kind,
                "gives": kind.gives(service.aid_parameters(session).get(kind.code, {})),
                "eligibility": kind.eligibility(youth, {}, _today()),
                "document_label": documents.kind_label,
                "is_open": False,
                "error": str(error),
            },
            status_code=409,
        )
    return see_other(f"/mon-espace/demandes/{aid_request.id}/etape/{aid_request.current_step or 1}")


@router.get("/demandes")
def my_requests(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    requests = service.youth_requests(session, youth.id)
    return render(
        request,
        "aid_requests/list.html",
        {
            "requests": requests,
            "renewals": service.renewals_due(requests, _today()),
            "kind_name": lambda code: catalogue.kind(code).name,
            "status_label": service.status_label,
            "next_step": service.next_step,
        },
    )


def _sections(kind: AidKind) -> list[str]:
    return [
        *(["questions"] if kind.questions else []),
        *(["documents"] if kind.documents else []),
        "review",
    ]


def _display(field: FormField, value: str | None) -> str:
    if value in (None, ""):
        return _("Pas de réponse")
    assert value is not None
    if field.kind in {FieldKind.CHOICE, FieldKind.YES_NO}:
        return dict(field.choices).get(value, value)
    if field.kind is FieldKind.MONEY:
        return f"{value}\u00a0€"
    return value


def _step_page(
    request: Request,
    session: SessionDep,
    youth: Any,
    aid_request: AidRequest,
    step: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    kind = catalogue.kind(aid_request.aid_code)
    sections = _sections(kind)
    section = sections[step - 1]
    context: dict[str, Any] = {
        "aid_request": aid_request,
        "kind": kind,
        "step": step,
        "step_count": len(sections),
        "section": section,
        "answers": aid_request.form_data or {},
        "errors": errors or {},
        "error": error,
    }
    if section == "documents":
        context.update(_document_rows(session, youth.id, aid_request, kind.documents))
    if section == "review":
        missing = service.missing_for_submission(session, aid_request, kind)
        context.update(
            summary=[
                (field.label, _display(field, (aid_request.form_data or {}).get(field.name)))
                for field in kind.questions
            ],
            attached=aid_request.documents,
            missing=missing,
            document_label=documents.kind_label,
            questions_step=sections.index("questions") + 1 if "questions" in sections else None,
            documents_step=sections.index("documents") + 1 if "documents" in sections else None,
            missing_documents=[
                documents.kind_label(needed.kind)
                for needed in kind.documents
                if needed.kind.value in missing.documents
            ],
        )
    return render(request, "aid_requests/step.html", context, status_code=status_code)


@router.get("/demandes/{request_id}/etape/{step}")
def step_form(
    request: Request, session: SessionDep, youth: CurrentYouth, request_id: str, step: int
) -> Response:
    aid_request = _own_request(session, youth.id, request_id)
    if aid_request.status is not RequestStatus.DRAFT:
        return see_other(f"/mon-espace/demandes/{aid_request.id}")
    if not 1 <= step <= len(_sections(catalogue.kind(aid_request.aid_code))):
        raise HTTPException(status_code=404)
    return _step_page(request, session, youth, aid_request, step)


@router.post("/demandes/{request_id}/etape/{step}")
def step_save(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    request_id: str,
    step: int,
    form: FormDep,
) -> Response:
    aid_request = _own_request(session, youth.id, request_id)
    if aid_request.status is not RequestStatus.DRAFT:
        return see_other(f"/mon-espace/demandes/{aid_request.id}")
    kind = catalogue.kind(aid_request.aid_code)
    sections = _sections(kind)
    if not 1 <= step <= len(sections):
        raise HTTPException(status_code=404)
    later = form.get("action") == "plus_tard"
    section = sections[step - 1]
    if section == "questions":
        errors = service.save_answers(
            aid_request, kind, {key: str(value) for key, value in form.items()}
        )
        if errors and not later:
            return _step_page(
                request, session, youth, aid_request, step, errors=errors, status_code=422
            )
    elif section == "documents":
        added, upload_errors = _add_uploads(
            request, session, youth, [needed.kind for needed in kind.documents], form
        )
        chosen = [str(value) for value in form.getlist("documents")]
        service.set_documents(session, aid_request, youth.id, chosen + added)
        if upload_errors:
            return _step_page(
                request, session, youth, aid_request, step, errors=upload_errors, status_code=422
            )
    aid_request.current_step = max(aid_request.current_step, min(step + 1, len(sections)))
    record_activity(session, youth, Activity.REQUEST, utcnow())
    if later:
        return see_other("/mon-espace/demandes?enregistre=1")
    return see_other(f"/mon-espace/demandes/{aid_request.id}/etape/{min(step + 1, len(sections))}")


@router.post("/demandes/{request_id}/envoyer")
def send(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    request_id: str,
    certifie: Annotated[str, Form()] = "",
) -> Response:
    aid_request = _own_request(session, youth.id, request_id)
    last_step = len(_sections(catalogue.kind(aid_request.aid_code)))
    if certifie != "oui":
        return _step_page(
            request,
            session,
            youth,
            aid_request,
            last_step,
            status_code=422,
            error=_("Cochez la case pour dire que vos réponses sont vraies."),
        )
    try:
        service.submit(session, aid_request, youth)
    except service.RequestError as error:
        return _step_page(
            request, session, youth, aid_request, last_step, status_code=422, error=str(error)
        )
    return see_other(f"/mon-espace/demandes/{aid_request.id}?envoyee=1")


@router.get("/demandes/{request_id}")
def request_detail(
    request: Request, session: SessionDep, youth: CurrentYouth, request_id: str
) -> Response:
    aid_request = _own_request(session, youth.id, request_id)
    kind = catalogue.kind(aid_request.aid_code)
    return render(
        request,
        "aid_requests/detail.html",
        {
            "aid_request": aid_request,
            "kind": kind,
            "status_label": service.status_label,
            "next_step": service.next_step,
            "withdrawable": aid_request.status in service.WITHDRAWABLE,
            "summary": [
                (field.label, _display(field, (aid_request.form_data or {}).get(field.name)))
                for field in kind.questions
            ],
            "document_label": documents.kind_label,
            "sent": request.query_params.get("envoyee") == "1",
            "documents_sent": request.query_params.get("documents") == "1",
            "granted": service.granted_summary(aid_request),
        },
    )


@router.get("/demandes/{request_id}/attestation.pdf")
def attestation_pdf(
    request: Request, session: SessionDep, youth: CurrentYouth, request_id: str
) -> Response:
    """The grant's attestation, for the youth whose request it is (404 for anyone else,
    and while the request is not granted)."""
    aid_request = _own_request(session, youth.id, request_id)
    facts = attestation.attested(session, aid_request, youth)
    if facts is None:
        raise HTTPException(status_code=404)
    return attestation_download(facts, base_url=request.app.state.settings.base_url)


def attestation_download(facts: attestation.Attested, *, base_url: str) -> Response:
    """The attestation as a file to save (the youth's copy and the référent's are one)."""
    return Response(
        attestation.render_pdf(facts, base_url=base_url, issued_at=utcnow()),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="attestation-{facts.reference}.pdf"'
        },
    )


def _verification_page(
    request: Request,
    *,
    verified: attestation.Verified | None = None,
    typed: str = "",
    checked: bool = False,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "aid_requests/verify.html",
        {"verified": verified, "typed": typed, "checked": checked, "error": error},
        status_code=status_code,
    )


@verification_router.get("")
def verification_form(request: Request, code: str | None = None) -> Response:
    """The page a person reaches by typing the address printed on the attestation; the
    form sends the code typed to /verifier/{code} (no JavaScript needed)."""
    if code is None or not code.strip():
        return _verification_page(request)
    normalised = attestation.normalise(code)
    if normalised is None:
        error = _("Ce code n’a pas la bonne forme : 12 lettres ou chiffres, comme 7K2M-9QXD-4RTB.")
        return _verification_page(request, typed=code, error=error, status_code=422)
    return see_other(f"/verifier/{attestation.shown(normalised)}")


@verification_router.get("/{code}")
def verification(request: Request, session: SessionDep, code: str) -> Response:
    verified = attestation.verify(session, code)
    return _verification_page(
        request,
        verified=verified,
        typed=code,
        checked=True,
        status_code=200 if verified else 404,
    )


@router.post("/demandes/{request_id}/retirer")
def withdraw(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    request_id: str,
    raison: Annotated[str, Form()] = "",
) -> Response:
    aid_request = _own_request(session, youth.id, request_id)
    # A refusal (a decision came first) reaches the error page with its reason.
    service.withdraw(session, aid_request, youth, reason=raison)
    return see_other(f"/mon-espace/demandes/{aid_request.id}")


def _missing_rows(kind: AidKind) -> list[RequiredDocument]:
    """The aid's documents, and "another document" for what the référent may ask besides."""
    rows = list(kind.documents)
    if all(needed.kind is not DocumentKind.OTHER for needed in rows):
        rows.append(RequiredDocument(DocumentKind.OTHER, "", required=False))
    return rows


def _missing_page(
    request: Request,
    session: SessionDep,
    youth: Any,
    aid_request: AidRequest,
    *,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    kind = catalogue.kind(aid_request.aid_code)
    context: dict[str, Any] = {
        "aid_request": aid_request,
        "kind": kind,
        "errors": errors or {},
        "error": error,
        **_document_rows(session, youth.id, aid_request, _missing_rows(kind)),
    }
    return render(request, "aid_requests/missing.html", context, status_code=status_code)


@router.get("/pieces")
def missing_documents_link(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    """The SMS's short link: the request waiting for a document, or the list when several
    (or none any more) do."""
    waiting = [
        aid_request
        for aid_request in service.youth_requests(session, youth.id)
        if aid_request.status is RequestStatus.MISSING_DOCUMENTS
    ]
    if len(waiting) == 1:
        return see_other(f"/mon-espace/demandes/{waiting[0].id}/pieces")
    return see_other("/mon-espace/demandes")


@router.get("/demandes/{request_id}/pieces")
def missing_documents(
    request: Request, session: SessionDep, youth: CurrentYouth, request_id: str
) -> Response:
    """Where the référent's "il manque un document" leads (SMS, email, Mon espace): the
    document is added right here, and the référent is told in the same tap."""
    aid_request = _own_request(session, youth.id, request_id)
    if aid_request.status is not RequestStatus.MISSING_DOCUMENTS:
        return see_other(f"/mon-espace/demandes/{aid_request.id}")
    return _missing_page(request, session, youth, aid_request)


@router.post("/demandes/{request_id}/documents-ajoutes")
def missing_documents_added(
    request: Request, session: SessionDep, youth: CurrentYouth, request_id: str, form: FormDep
) -> Response:
    aid_request = _own_request(session, youth.id, request_id)
    if aid_request.status is not RequestStatus.MISSING_DOCUMENTS:
        raise service.RequestConflict(_("Aucun document n’est demandé pour cette demande."))
    kind = catalogue.kind(aid_request.aid_code)
    added, upload_errors = _add_uploads(
        request, session, youth, [needed.kind for needed in _missing_rows(kind)], form
    )
    chosen = {str(value) for value in form.getlist("documents")} | set(added)
    current = {str(document.id) for document in aid_request.documents}
    service.set_documents(session, aid_request, youth.id, sorted(current | chosen))
    if upload_errors:
        return _missing_page(
            request, session, youth, aid_request, errors=upload_errors, status_code=422
        )
    if not chosen - current:
        return _missing_page(
            request,
            session,
            youth,
            aid_request,
            status_code=422,
            error=_("Ajoutez le document demandé : une photo ou un fichier."),
        )
    service.documents_supplied(session, aid_request, youth)
    return see_other(f"/mon-espace/demandes/{aid_request.id}?documents=1")
