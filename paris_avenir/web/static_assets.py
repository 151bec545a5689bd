"""Static files under versioned URLs (/static/<digest>/<path>), cached for a year.

The digest changes with the content, so a long cache never serves a stale asset and a
youth on a small data plan downloads htmx and the stylesheet once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from paris_avenir.config import PROJECT_ROOT
from paris_avenir.web.routing import Route

STATIC_DIR = PROJECT_ROOT / "static"
LONG_CACHE = "public, max-age=31536000, immutable"


class StaticAssets:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory.resolve()
        self.digests = {
            path.relative_to(self.directory).as_posix(): hashlib.sha256(
                path.read_bytes()
            ).hexdigest()[:12]
            for path in sorted(self.directory.rglob("*"))
            if path.is_file()
        }

    def url(self, relative_path: str) -> str:
        digest = self.digests.get(relative_path)
        if digest is None:
            raise KeyError(f"no static file {relative_path!r}")
        return f"/static/{digest}/{relative_path}"

    def router(self) -> APIRouter:
        router = APIRouter(route_class=Route)

        @router.get("/static/{digest}/{relative_path:path}", include_in_schema=False)
        def serve_static(digest: str, relative_path: str) -> FileResponse:
            current = self.digests.get(relative_path)
            if current is None:
                raise HTTPException(status_code=404)
            # An old digest (page cached before a deploy) still gets the file, uncached.
            cache = LONG_CACHE if digest == current else "no-cache"
            return FileResponse(self.directory / relative_path, headers={"Cache-Control": cache})

        return router
