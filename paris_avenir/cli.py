"""The `paris-avenir` console script (documented operator interface, see README)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from paris_avenir.config import ConfigurationError, Settings, get_settings
from paris_avenir.db import create_database_engine

logger = logging.getLogger("paris_avenir")


def _load_settings() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as error:
        # One clear line for the operator, no traceback.
        print(f"paris-avenir: configuration refusée : {error}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_migrate(_args: argparse.Namespace) -> int:
    from paris_avenir.aid_requests.catalogue import ensure_catalogue
    from paris_avenir.db import make_session_factory
    from paris_avenir.migrate import upgrade_to_head

    engine = create_database_engine(_load_settings().database_url)
    try:
        upgrade_to_head(engine)
        # The catalogue is configuration every installation needs, not demo data.
        with make_session_factory(engine).begin() as session:
            ensure_catalogue(session)
    finally:
        engine.dispose()
    print("Base de données à jour.")
    return 0


def cmd_demo(_args: argparse.Namespace) -> int:
    from paris_avenir.db import make_session_factory
    from paris_avenir.demo import load_demo_data

    engine = create_database_engine(_load_settings().database_url)
    try:
        with make_session_factory(engine).begin() as session:
            created = load_demo_data(session)
    finally:
        engine.dispose()
    if created.total:
        print(f"Données de démonstration ajoutées : {created.describe()}.")
    else:
        print("Données de démonstration déjà présentes : rien ajouté.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from paris_avenir.app import create_app

    app = create_app(_load_settings())
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=True, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paris-avenir", description="Jeunes de l'ASE – Paris avenir"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the web application")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database to the latest schema")
    migrate.set_defaults(handler=cmd_migrate)

    demo = commands.add_parser("demo", help="load the demo data (idempotent)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
