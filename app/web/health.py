"""``/healthz``: is the database reachable and is the catalogue the file on disk?"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalogue.reload import CatalogueHolder
from app.web.transactions import READ_ONLY_OPT


@get(
    "/healthz", name="healthz", media_type=MediaType.JSON, include_in_schema=False, opt={READ_ONLY_OPT: True}
)
async def healthz(db_session: AsyncSession, catalogue: CatalogueHolder) -> Response[dict[str, Any]]:
    """503 when the database does not answer; 200 with the problems when the catalogue file is broken."""
    try:
        await db_session.execute(text("SELECT 1"))
        database: dict[str, Any] = {"ok": True}
    except Exception as exc:  # the point is to report any failure, not to crash
        database = {"ok": False, "error": type(exc).__name__}
    body: dict[str, Any] = {
        "status": "ok" if database["ok"] and not catalogue.problems else "degraded",
        "database": database,
        "catalogue": {
            "valid": not catalogue.problems,
            "version": catalogue.version,
            "problems": list(catalogue.problems),
        },
    }
    return Response(body, status_code=200 if database["ok"] else 503)
