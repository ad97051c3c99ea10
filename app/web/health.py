"""``/healthz``: ok or not, for anyone; ``/healthz/detail``: why, for operators.

The public answer says only whether the shop is fine, since catalogue problems name files and
values and a database error names the driver. The detail sits behind the ``/metrics`` token.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalogue.reload import CatalogueHolder
from app.web.security import metrics_guard
from app.web.transactions import READ_ONLY_OPT


async def _report(db_session: AsyncSession, catalogue: CatalogueHolder) -> Response[dict[str, Any]]:
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


@get(
    "/healthz", name="healthz", media_type=MediaType.JSON, include_in_schema=False, opt={READ_ONLY_OPT: True}
)
async def healthz(db_session: AsyncSession, catalogue: CatalogueHolder) -> Response[dict[str, Any]]:
    """The status word and code of the full report, nothing else."""
    report = await _report(db_session, catalogue)
    assert isinstance(report.content, dict)
    return Response({"status": report.content["status"]}, status_code=report.status_code)


@get(
    "/healthz/detail",
    name="healthz:detail",
    media_type=MediaType.JSON,
    include_in_schema=False,
    guards=[metrics_guard],
    opt={READ_ONLY_OPT: True},
)
async def healthz_detail(db_session: AsyncSession, catalogue: CatalogueHolder) -> Response[dict[str, Any]]:
    """Database and catalogue state, for operators holding the metrics token."""
    return await _report(db_session, catalogue)


ROUTES: list[Any] = [healthz, healthz_detail]
