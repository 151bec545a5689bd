"""The `paris-avenir` console script (documented operator interface, see README)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from paris_avenir.config import ConfigurationError, Settings, get_settings
from paris_avenir.db import create_database_engine
from paris_avenir.kit.errors import DomainError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from paris_avenir.outreach.engine import CycleReport

logger = logging.getLogger("paris_avenir")


def _load_settings() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as error:
        # One clear line for the operator, no traceback.
        print(f"paris-avenir: configuration refusée : {error}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_migrate(_args: argparse.Namespace) -> int:
    # Alembic's own INFO lines (its plugins, one per migration) are for whoever debugs a
    # migration: one line of ours says what happened.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import func, select

    from paris_avenir.aid_requests.catalogue import ensure_catalogue
    from paris_avenir.aid_requests.models import Aid
    from paris_avenir.db import make_session_factory
    from paris_avenir.migrate import alembic_config, upgrade_to_head

    engine = create_database_engine(_load_settings().database_url)
    try:
        with engine.connect() as connection:
            before = MigrationContext.configure(connection).get_current_revision()
        upgrade_to_head(engine)
        scripts = ScriptDirectory.from_config(alembic_config())
        head = scripts.get_current_head()
        applied = len(list(scripts.iterate_revisions(head, before))) if head != before else 0
        # The catalogue is configuration every installation needs, not demo data.
        with make_session_factory(engine).begin() as session:
            added = ensure_catalogue(session)
            aids = session.scalar(select(func.count()).select_from(Aid)) or 0
    finally:
        engine.dispose()
    print(
        f"Base de données à jour (révision {head}, {applied} migration(s) appliquée(s)) ; "
        f"catalogue : {aids} aides dont {added} ajoutée(s)."
    )
    return 0


def cmd_demo(_args: argparse.Namespace) -> int:
    from paris_avenir.db import make_session_factory
    from paris_avenir.demo import database_counts, load_demo_data
    from paris_avenir.kit.crypto import build_cipher

    settings = _load_settings()
    if settings.is_prod:
        print("paris-avenir: les données de démonstration sont refusées en prod.", file=sys.stderr)
        return 2
    engine = create_database_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as session:
            created = load_demo_data(
                session, cipher=build_cipher(settings), base_url=settings.base_url
            )
            held = database_counts(session)
    finally:
        engine.dispose()
    # One line: what was added, what the database now holds (the README says how to sign in).
    print(created.describe(held))
    return 0


def cmd_demo_totp(_args: argparse.Namespace) -> int:
    """The TOTP code of the demo staff accounts right now (development only)."""
    import pyotp

    from paris_avenir.demo import DEMO_TOTP_SECRET

    if _load_settings().is_prod:
        print("paris-avenir: les comptes de démonstration sont refusés en prod.", file=sys.stderr)
        return 2
    print(pyotp.TOTP(DEMO_TOTP_SECRET).now())
    return 0


def serve_settings(settings: Settings, host: str, port: int) -> Settings:
    """Links in SMS and emails lead to the address being served, unless
    PARIS_AVENIR_BASE_URL says otherwise (a proxy, a public name)."""
    if "base_url" in settings.model_fields_set:
        return settings
    link_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    if ":" in link_host:
        link_host = f"[{link_host}]"
    return settings.model_copy(update={"base_url": f"http://{link_host}:{port}"})


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from paris_avenir.app import SERVER_OPTIONS

    settings = serve_settings(_load_settings(), args.host, args.port)
    print(
        f"Paris avenir sur http://{args.host}:{args.port} ; "
        f"liens des SMS et e-mails : {settings.base_url}"
    )
    if not settings.is_prod:
        print(f"SMS et e-mails envoyés (développement) : {settings.base_url}/dev/messages")
    if args.workers > 1:
        return _serve_workers(args, settings)

    from paris_avenir.app import create_app
    from paris_avenir.scheduler import build_scheduler

    # One process (`make run`): the scheduler's jobs run on threads beside the requests.
    app = create_app(settings)
    scheduler = build_scheduler(app.state.settings, app.state.session_factory, app.state.channels)
    scheduler.start()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", **SERVER_OPTIONS)
    finally:
        scheduler.shutdown(wait=False)
    return 0


# What uvicorn's workers import: each builds its own application (worker_app).
WORKER_APP = "paris_avenir.cli:worker_app"


def worker_app() -> Any:
    """The application of one worker of `serve --workers N`, a process of its own started
    by uvicorn (spawned: nothing of the parent's is inherited but the environment). It
    sets up its logging and builds its own app, hence its own engine, connection pool and
    in-flight bound (app.requests_in_flight: computed from this process's pool)."""
    import paris_avenir.models  # noqa: F401
    from paris_avenir.app import create_app

    configure_logging()
    return create_app(_load_settings())


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """N web workers (uvicorn's supervisor restarts one that dies) and the scheduler in a
    process of its own: N copies of it would only wait on each other's locks."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import uvicorn

    from paris_avenir.app import SERVER_OPTIONS
    from paris_avenir.monitoring import metrics

    # The workers and the scheduler read their settings from the environment: the links
    # they write must lead where this command serves.
    os.environ["PARIS_AVENIR_BASE_URL"] = settings.base_url
    # /metrics adds up every worker's requests: they share prometheus-client's multiprocess
    # directory, the operator's if set, else one of this run's own.
    given = metrics.multiprocess_directory()
    shared = given or Path(tempfile.mkdtemp(prefix="paris-avenir-metrics-"))
    metrics.prepare_multiprocess_directory(shared)
    os.environ[metrics.MULTIPROCESS_DIRECTORY] = str(shared)
    scheduler = SchedulerProcess()
    scheduler.start()
    try:
        uvicorn.run(
            WORKER_APP,
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="info",
            **SERVER_OPTIONS,
        )
    finally:
        scheduler.stop()
        if given is None:
            del os.environ[metrics.MULTIPROCESS_DIRECTORY]
            shutil.rmtree(shared, ignore_errors=True)
    return 0


class SchedulerProcess:
    """`paris-avenir scheduler` as a child of `serve --workers N`: started with it, started
    again if it dies, stopped with it. The child also stops when its standard input closes,
    so that it does not outlive a `serve` that was killed without a chance to stop it."""

    RESTART_AFTER_SECONDS = 5.0

    def __init__(self) -> None:
        import threading

        self._stopping = threading.Event()
        self._process: Any = None
        self._watch = threading.Thread(target=self._keep_running, daemon=True)

    def _spawn(self) -> Any:
        import subprocess

        command = [sys.executable, "-m", "paris_avenir.cli", "scheduler", "--with-parent"]
        return subprocess.Popen(command, stdin=subprocess.PIPE)  # noqa: S603 - our own command

    def start(self) -> None:
        self._process = self._spawn()
        self._watch.start()

    def _keep_running(self) -> None:
        while not self._stopping.is_set():
            code = self._process.wait()
            if self._stopping.wait(self.RESTART_AFTER_SECONDS):
                return
            logger.error("scheduler process exited (code %s): starting it again", code)
            self._process = self._spawn()

    def stop(self) -> None:
        """SIGTERM: the scheduler finishes the job it is running (the cycle commits in
        batches), then exits; killed if it has not within 30 seconds."""
        import subprocess

        self._stopping.set()
        self._process.terminate()
        self._watch.join(timeout=35)
        process = self._process  # the watch may have started one just before
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cmd_create_staff(args: argparse.Namespace) -> int:
    from paris_avenir.auth import staff_account
    from paris_avenir.auth.staff_local import create_staff
    from paris_avenir.db import make_session_factory
    from paris_avenir.kit.crypto import build_cipher
    from paris_avenir.staff.models import StaffRole

    settings = _load_settings()
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    if password is not None:
        # The same policy as the activation page: 12 characters, not a common password.
        problem = staff_account.password_problem(
            password, email=args.email.strip().lower(), full_name=args.name
        )
        if problem:
            print(f"paris-avenir: {problem}", file=sys.stderr)
            return 1
    engine = create_database_engine(settings.database_url)
    try:
        cipher = build_cipher(settings)
        who: dict[str, Any] = {
            "email": args.email,
            "full_name": args.name,
            "role": StaffRole(args.role),
            "team_name": args.team,
        }
        with make_session_factory(engine).begin() as session:
            if password is None:
                invitation = staff_account.invite_staff(
                    session, cipher, **who, base_url=settings.base_url, by=None
                )
            else:
                created = create_staff(session, cipher, **who, password=password)
    except (ValueError, DomainError) as error:  # an unknown role; a refusal of the service
        print(f"paris-avenir: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if password is None:
        # Nobody but the person who opens it chooses the password and the TOTP secret.
        print(f"Compte créé : {invitation.staff.email} ({invitation.staff.role.value})")
        print("Lien d'activation (une seule fois, 72 heures) à transmettre à la personne :")
        print(invitation.link)
        return 0
    # The operator chose this password: the TOTP URI is shown once, here only (neither is
    # stored in clear nor logged).
    print(f"Compte créé : {created.staff.email} ({created.staff.role.value})")
    print("Ajoutez ce compte à l'application d'authentification (TOTP) :")
    print(created.totp_uri)
    return 0


def cmd_rotate_document_keys(_args: argparse.Namespace) -> int:
    from paris_avenir.db import make_session_factory
    from paris_avenir.documents.service import rotate_all
    from paris_avenir.documents.storage import DocumentStore
    from paris_avenir.kit.crypto import build_cipher, rotate_encrypted_columns
    from paris_avenir.models import Base

    settings = _load_settings()
    engine = create_database_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            count = rotate_all(session, DocumentStore(settings.upload_dir, build_cipher(settings)))
        # The encrypted columns (messages, answers, reasons, sensitive facts): same keys.
        with make_session_factory(engine).begin() as session:
            values = rotate_encrypted_columns(session, Base.metadata)
    finally:
        engine.dispose()
    print(f"Documents rechiffrés avec la clé la plus récente : {count}.")
    print(f"Valeurs chiffrées en base rechiffrées : {values}.")
    return 0


def cmd_check_data(_args: argparse.Namespace) -> int:
    """After a restore (docs/operations.md): every document read back, every encrypted
    column tried, with the configured keys."""
    from paris_avenir.db import make_session_factory
    from paris_avenir.documents.service import read_back_all
    from paris_avenir.documents.storage import DocumentStore
    from paris_avenir.kit.crypto import build_cipher, undecryptable_columns
    from paris_avenir.models import Base

    settings = _load_settings()
    engine = create_database_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            report = read_back_all(
                session, DocumentStore(settings.upload_dir, build_cipher(settings))
            )
            columns = undecryptable_columns(session, Base.metadata)
    finally:
        engine.dispose()
    total = report.readable + len(report.missing) + len(report.undecryptable) + len(report.altered)
    print(f"Documents relus à l’identique : {report.readable} sur {total}.")
    problems = [
        (report.undecryptable, "aucune clé de PARIS_AVENIR_ENCRYPTION_KEYS ne les déchiffre"),
        (report.missing, f"fichier absent de {settings.upload_dir}"),
        (report.altered, "contenu différent de celui envoyé"),
    ]
    for ids, reason in problems:
        if ids:
            print(
                f"Documents illisibles ({reason}) : {len(ids)}, par exemple {ids[0]}.",
                file=sys.stderr,
            )
    if columns:
        print(
            "Colonnes chiffrées qu’aucune clé de PARIS_AVENIR_ENCRYPTION_KEYS ne déchiffre : "
            + ", ".join(columns)
            + ".",
            file=sys.stderr,
        )
    if report.undecryptable or columns:
        print(
            "Les clés ne sont pas celles des données : remettez la liste de clés conservée à "
            "part pour ces sauvegardes (coffre de secrets) ; sans elle, rien ne peut être relu.",
            file=sys.stderr,
        )
    return 0 if report.sound and not columns else 1


def cmd_import_youths(args: argparse.Namespace) -> int:
    from pathlib import Path

    from paris_avenir.backoffice.importer import describe, import_youths
    from paris_avenir.db import make_session_factory

    settings = _load_settings()
    try:
        content = Path(args.file).read_bytes()
    except OSError as error:
        print(f"paris-avenir: fichier illisible : {error.strerror}", file=sys.stderr)
        return 2
    engine = create_database_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as session:
            report = import_youths(
                session, content, base_url=settings.base_url, dry_run=args.dry_run
            )
    finally:
        engine.dispose()
    for line in describe(report):
        print(line, file=sys.stderr if report.errors else sys.stdout)
    # Changes to youths already followed are confirmed by a person, in /pro/import.
    return 1 if report.errors or report.awaiting_confirmation else 0


class _BadNow(ValueError):
    """--now is not a date: explained on stderr, and the command answers 2 (main)."""


def _parse_now(value: str | None) -> datetime | None:
    """--now as an aware instant (UTC when no offset is given); explains a bad value."""
    if not value:
        return None
    try:
        now = datetime.fromisoformat(value)
    except ValueError as error:
        print(
            "paris-avenir: --now attend une date ISO, par exemple 2026-12-01T10:00:00+01:00",
            file=sys.stderr,
        )
        raise _BadNow(value) from error
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _dispatch_all(factory: sessionmaker[Session], settings: Settings, now: datetime | None) -> None:
    """Send batch after batch until nothing is due, then print the totals."""
    from paris_avenir.messaging import outbox
    from paris_avenir.messaging.channels import build_channels

    channels = build_channels(settings)
    sent = retried = failed = 0
    while True:
        report = outbox.dispatch_due(factory, channels, now=now)
        sent, retried = sent + len(report.sent), retried + len(report.retried)
        failed += len(report.failed)
        if not (report.sent or report.retried or report.failed):
            break
    print(f"Messages envoyés : {sent}, à réessayer : {retried}, en échec : {failed}.")


def cmd_outbox_dispatch(args: argparse.Namespace) -> int:
    from paris_avenir.db import make_session_factory

    settings = _load_settings()
    now = _parse_now(args.now)
    engine = create_database_engine(settings.database_url)
    try:
        _dispatch_all(make_session_factory(engine), settings, now)
    finally:
        engine.dispose()
    return 0


def cmd_outreach_run(args: argparse.Namespace) -> int:
    from paris_avenir.db import make_session_factory
    from paris_avenir.outreach.engine import run_cycle

    settings = _load_settings()
    now = _parse_now(args.now)
    engine = create_database_engine(settings.database_url)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            report = run_cycle(
                session,
                base_url=settings.base_url,
                secret_key=settings.secret_key,
                now=now,
                dry_run=args.dry_run,
            )
            if args.dry_run:
                session.rollback()
            else:
                session.commit()
        if report.skipped_locked:
            print("Un autre planificateur fait déjà ce cycle : rien à faire.")
            return 0
        for line in describe_cycle(report, dry_run=args.dry_run):
            print(line)
        if not args.dry_run:
            _dispatch_all(factory, settings, now)
    finally:
        engine.dispose()
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """The nightly retention now: the purge, then the youth files (anonymised only when the
    admin switched it on). --dry-run counts and writes nothing."""
    from paris_avenir.db import make_session_factory
    from paris_avenir.documents.storage import DocumentStore
    from paris_avenir.kit.crypto import build_cipher
    from paris_avenir.retention import files
    from paris_avenir.retention.service import purge

    settings = _load_settings()
    now = _parse_now(args.now)
    engine = create_database_engine(settings.database_url)
    factory = make_session_factory(engine)
    store = DocumentStore(settings.upload_dir, build_cipher(settings))
    try:
        if args.dry_run:
            with factory() as session:
                purged = purge(session, now=now).audit_events
                report = files.anonymise_due(session, now=now, dry_run=True)
                session.rollback()  # what the purge would delete, counted, then kept
        else:
            purge_report, report = files.nightly(factory, store, now=now)
            purged = purge_report.audit_events
    finally:
        engine.dispose()
    for line in describe_retention(report, audit_purged=purged):
        print(line)
    return 0


def describe_retention(report: Any, *, audit_purged: int) -> list[str]:
    """The counts in words, never a name or a reference (cron mail, system logs)."""
    from paris_avenir.retention.files import Protection

    protected = report.protected
    lines = [
        "Dossiers arrivés au terme (25 ans passés, aucun contact depuis plus de 2 ans) : "
        f"{report.due}",
        f"Protégés : {report.protected_files} (demande en cours : "
        f"{protected[Protection.OPEN_REQUEST]}, tâche ouverte : "
        f"{protected[Protection.OPEN_TASK]}, rendez-vous à venir : "
        f"{protected[Protection.UPCOMING_APPOINTMENT]})",
    ]
    if report.dry_run:
        lines.append(f"Essai : {report.to_anonymise} dossier(s) à anonymiser, aucun modifié.")
    else:
        lines.append(f"Dossiers anonymisés : {report.anonymised}")
    lines.append(f"Entrées du journal d’audit effacées : {audit_purged}")
    return lines


def describe_cycle(report: CycleReport, *, dry_run: bool) -> list[str]:
    """What the cycle did (or would do), in words: contacts, tasks handed to people, tasks
    moved. Youths are named by their ASE reference: this output lands in cron mail and
    system logs."""
    from paris_avenir.outreach import labels
    from paris_avenir.staff.tasks import kind_label

    lines = []
    verb = "serait contacté" if dry_run else "contacté"
    for contact in report.contacts:
        what = [labels.reason_label(contact.reason)]
        step = labels.step_label(contact.reason, contact.step)
        if step:
            what.append(step)
        what.append(labels.channel_label(contact.channel))
        lines.append(f"{contact.youth_ref} — {verb} : {', '.join(what)}")
    opened = "tâche qui serait ouverte" if dry_run else "tâche ouverte"
    for task in report.tasks:
        lines.append(f"{task.youth_ref} — {opened} : {kind_label(task.kind)}")
    moved = "serait confiée" if dry_run else "confiée"
    for escalation in report.escalations:
        why = "en retard" if escalation.overdue else "sans responsable"
        to = "au superviseur" if escalation.overdue else "à qui peut la prendre"
        lines.append(
            f"{escalation.youth_ref} — tâche {why} {moved} {to} : {kind_label(escalation.kind)}"
        )
    if report.unlisted:
        # The report lists the first contacts only; the totals below count them all.
        lines.append(f"… et {report.unlisted} autre(s) contact(s), non listé(s) ici ; par étape :")
        for (reason, number, channel), count in sorted(report.counts.items(), key=str):
            what = [labels.reason_label(reason)]
            step_label = labels.step_label(reason, number)
            if step_label:
                what.append(step_label)
            what.append(labels.channel_label(channel))
            lines.append(f"{count} — {', '.join(what)}")
    # A step without a channel is a task for the référent (a call, an unreachable youth).
    lines.append(
        f"{report.contact_count} contact(s), dont {report.for_people} tâche(s) pour le "
        "référent ; "
        f"{len(report.tasks)} autre(s) tâche(s) ouverte(s) ; "
        f"{len(report.escalations)} tâche(s) déplacée(s)."
    )
    return lines


def cmd_scheduler(args: argparse.Namespace) -> int:
    import signal
    import threading

    from paris_avenir.db import make_session_factory
    from paris_avenir.messaging.channels import build_channels
    from paris_avenir.scheduler import build_scheduler

    settings = _load_settings()
    engine = create_database_engine(settings.database_url)
    scheduler = build_scheduler(settings, make_session_factory(engine), build_channels(settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.with_parent:
        # Started by `serve --workers N`: its end closes this pipe, however it ended.
        def stop_with_parent() -> None:
            sys.stdin.buffer.read()
            stop.set()

        threading.Thread(target=stop_with_parent, daemon=True).start()
    scheduler.start()
    print("Planificateur démarré (relances, envois, rappels). Ctrl+C pour arrêter.")
    stop.wait()
    scheduler.shutdown(wait=True)
    engine.dispose()
    return 0


def _roles() -> list[Any]:
    from paris_avenir.staff.models import StaffRole

    return list(StaffRole)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("au moins 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paris-avenir", description="Jeunes de l'ASE – Paris avenir"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the web application")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="web worker processes (default 1: the scheduler runs inside it); with more, "
        "the scheduler runs in a process of its own, started and stopped with them",
    )
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database to the latest schema")
    migrate.set_defaults(handler=cmd_migrate)

    demo = commands.add_parser("demo", help="load the demo data (idempotent)")
    demo.set_defaults(handler=cmd_demo)

    demo_totp = commands.add_parser(
        "demo-totp", help="print the demo staff accounts' TOTP code now (development)"
    )
    demo_totp.set_defaults(handler=cmd_demo_totp)

    staff = commands.add_parser(
        "create-staff", help="create a local staff account (password + TOTP)"
    )
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", required=True, help="full name")
    staff.add_argument("--role", required=True, choices=[role.value for role in _roles()])
    staff.add_argument("--team", help="team name (created if missing)")
    staff.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (12 characters at least, not a common "
        "password); without it, an activation link lets the person choose theirs",
    )
    staff.set_defaults(handler=cmd_create_staff)

    importer = commands.add_parser(
        "import-youths", help="import the ASE information system's CSV export (all or nothing)"
    )
    importer.add_argument("file")
    importer.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    importer.set_defaults(handler=cmd_import_youths)

    outreach = commands.add_parser("outreach", help="the non-recours watch")
    outreach_commands = outreach.add_subparsers(dest="outreach_command", required=True)
    outreach_run = outreach_commands.add_parser(
        "run", help="one cycle now (and dispatch what is due)"
    )
    outreach_run.add_argument("--dry-run", action="store_true", help="print who would be contacted")
    outreach_run.add_argument("--now", help="as if at this ISO instant")
    outreach_run.set_defaults(handler=cmd_outreach_run)

    retention = commands.add_parser(
        "retention",
        help="the nightly retention now: purge, then youth files past 25 and 2 years without "
        "contact (anonymised only when the admin switched it on)",
    )
    retention.add_argument("--dry-run", action="store_true", help="count, change nothing")
    retention.add_argument("--now", help="as if at this ISO instant")
    retention.set_defaults(handler=cmd_retention)

    outbox = commands.add_parser("outbox", help="outgoing SMS and emails")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True)
    outbox_dispatch = outbox_commands.add_parser("dispatch", help="send everything due now")
    outbox_dispatch.add_argument("--now", help="as if at this ISO instant")
    outbox_dispatch.set_defaults(handler=cmd_outbox_dispatch)

    scheduler = commands.add_parser("scheduler", help="run the background jobs alone")
    # `serve --workers N` starts it so: it stops when serve's end closes its standard input.
    scheduler.add_argument("--with-parent", action="store_true", help=argparse.SUPPRESS)
    scheduler.set_defaults(handler=cmd_scheduler)

    rotate = commands.add_parser(
        "rotate-document-keys",
        help="re-encrypt every stored document and encrypted column with the first key of "
        "ENCRYPTION_KEYS",
    )
    rotate.set_defaults(handler=cmd_rotate_document_keys)

    check = commands.add_parser(
        "check-data",
        help="read every document back and try every encrypted column with ENCRYPTION_KEYS "
        "(after a restore)",
    )
    check.set_defaults(handler=cmd_check_data)
    return parser


def configure_logging() -> None:
    # One format, nothing personal in it (see paris_avenir/logs.py).
    from paris_avenir.logs import configure_logging as configure

    configure()


def main(argv: Sequence[str] | None = None) -> int:
    # Every table, so that foreign keys between domains resolve whatever the command.
    import paris_avenir.models  # noqa: F401

    configure_logging()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except _BadNow:
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
