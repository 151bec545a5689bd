"""Import from the ASE information system (/pro/import): a supervisor for their own team, an
admin for every team. A file that changes youths already followed (phone, email, référent)
is shown first; it is written only by a second POST that carries the one-time token of that
exact check. The file itself stays on the server between the two (encrypted), so it cannot
be swapped; the token works once, even with many confirmations at the same moment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from cryptography.fernet import InvalidToken, MultiFernet
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import client_ip
from paris_avenir.auth.permissions import ImportStaff
from paris_avenir.backoffice import importer
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.kit.crypto import new_token, token_hash
from paris_avenir.staff.models import Permission, StaffUser
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route, settings_of
from paris_avenir.web.templating import render
from paris_avenir.youths.import_models import ImportPreview

router = APIRouter(route_class=Route, prefix="/pro")
MAX_IMPORT_BYTES = 5 * 1024 * 1024
# Long enough to read the list of changes; short enough that the file does not linger.
PREVIEW_LIFETIME = timedelta(minutes=30)


def _page(
    request: Request,
    staff: StaffUser,
    *,
    report: importer.ImportReport | None = None,
    token: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    lines = importer.describe(report) if report else []
    if report and report.changes and not report.applied:
        lines = lines[:1]  # the changes are in their own table
    context: dict[str, Any] = {
        "staff": staff,
        "team_only": not staff.may(Permission.ADMINISTRATION),
        "report": report,
        "lines": lines,
        "token": token,
        "error": error,
    }
    return render(request, "staff/import.html", context, status_code=status_code)


def _keep_for_confirmation(
    session: Session,
    request: Request,
    staff: StaffUser,
    content: bytes,
    report: importer.ImportReport,
    now: datetime,
) -> str:
    """Stores the checked file and what the check found; returns the one-time token."""
    session.execute(delete(ImportPreview).where(ImportPreview.expires_at < now))
    cipher: MultiFernet = request.app.state.cipher
    token = new_token()
    session.add(
        ImportPreview(
            staff_id=staff.id,
            token_hash=token_hash(token),
            content_sha256=importer.content_sha256(content),
            plan_digest=report.plan_digest,
            content_encrypted=cipher.encrypt(content).decode(),
            expires_at=now + PREVIEW_LIFETIME,
        )
    )
    session.flush()
    return token


def _summary(report: importer.ImportReport) -> dict[str, Any]:
    return {
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "changes": len(report.changes),
        "errors": len(report.errors),
    }


def _claim(session: Session, preview: ImportPreview, now: datetime) -> bool:
    """confirmed_at NULL → now, by one request only: PostgreSQL makes a concurrent UPDATE
    wait for this one's commit and then finds the row no longer matches; SQLite writes one
    at a time."""
    result = session.execute(
        update(ImportPreview)
        .where(
            ImportPreview.id == preview.id,
            ImportPreview.confirmed_at.is_(None),
            ImportPreview.expires_at > now,
        )
        .values(confirmed_at=now, content_encrypted=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


@router.get("/import")
def import_form(request: Request, staff: ImportStaff) -> Response:
    return _page(request, staff)


@router.post("/import")
def import_upload(
    request: Request,
    session: SessionDep,
    staff: ImportStaff,
    fichier: Annotated[UploadFile | None, File()] = None,
    essai: Annotated[str, Form()] = "",
) -> Response:
    content = fichier.file.read(MAX_IMPORT_BYTES + 1) if fichier is not None else b""
    if not content or len(content) > MAX_IMPORT_BYTES:
        return _page(
            request,
            staff,
            error=_("Choisissez un fichier CSV de 5 Mo au plus."),
            status_code=422,
        )
    now = utcnow()
    ip_address = client_ip(request)
    report = importer.import_youths(
        session,
        content,
        base_url=settings_of(request).base_url,
        dry_run=essai == "oui",
        now=now,
        by=staff,
        ip_address=ip_address,
        secret_key=settings_of(request).secret_key,
    )
    if report.errors:
        action = "youth.import_refused"
    elif report.applied:
        action = "youth.import"
    else:
        action = "youth.import_checked_file"
    audit.record(
        session,
        action,
        actor_staff_id=staff.id,
        ip_address=ip_address,
        detail={**_summary(report), "file_sha256": importer.content_sha256(content)},
        now=now,
    )
    token = None
    if not report.errors and not report.applied:
        token = _keep_for_confirmation(session, request, staff, content, report, now)
    return _page(
        request, staff, report=report, token=token, status_code=422 if report.errors else 200
    )


@router.post("/import/confirmer")
def import_confirm(
    request: Request,
    session: SessionDep,
    staff: ImportStaff,
    jeton: Annotated[str, Form()] = "",
) -> Response:
    """Applies the file of one check, once: the token is claimed by a conditional UPDATE
    (a second confirmation, at the same moment or later, finds it used)."""
    now = utcnow()
    ip_address = client_ip(request)
    preview = session.scalar(
        select(ImportPreview).where(
            ImportPreview.token_hash == token_hash(jeton), ImportPreview.staff_id == staff.id
        )
    )
    content_encrypted = preview.content_encrypted if preview else None
    claimed = (
        preview is not None and content_encrypted is not None and _claim(session, preview, now)
    )
    content = b""
    if claimed:
        assert preview is not None and content_encrypted is not None
        cipher: MultiFernet = request.app.state.cipher
        try:
            content = cipher.decrypt(content_encrypted.encode())
        except InvalidToken:
            claimed = False
        if importer.content_sha256(content) != preview.content_sha256:
            claimed = False
    if not claimed:
        audit.record(
            session,
            "youth.import_confirm_refused",
            actor_staff_id=staff.id,
            ip_address=ip_address,
            detail={"reason": "used_expired_or_unknown"},
            now=now,
        )
        return _page(
            request,
            staff,
            error=_(
                "Cet essai ne peut plus être confirmé : il a déjà servi ou il a plus de "
                "30 minutes. Envoyez de nouveau le fichier."
            ),
            status_code=409,
        )
    assert preview is not None
    report = importer.import_youths(
        session,
        content,
        base_url=settings_of(request).base_url,
        now=now,
        by=staff,
        confirmed_plan=preview.plan_digest,
        ip_address=ip_address,
        secret_key=settings_of(request).secret_key,
    )
    if not report.applied:
        # The youths' files changed since the check (or the importer's scope did): what
        # was confirmed is no longer what would be written.
        audit.record(
            session,
            "youth.import_confirm_refused",
            actor_staff_id=staff.id,
            ip_address=ip_address,
            detail={**_summary(report), "reason": "changed_since_check"},
            now=now,
        )
        return _page(
            request,
            staff,
            report=report if report.errors else None,
            error=_(
                "Rien n’a été importé : des dossiers ont changé depuis l’essai. "
                "Envoyez de nouveau le fichier pour voir les changements à jour."
            ),
            status_code=409,
        )
    audit.record(
        session,
        "youth.import",
        actor_staff_id=staff.id,
        ip_address=ip_address,
        detail={
            **_summary(report),
            "file_sha256": preview.content_sha256,
            "preview_id": str(preview.id),
        },
        now=now,
    )
    return _page(request, staff, report=report)
