"""``/admin/ledger``: download the ledger as CSV with its hash chain (``storefront ledger verify`` checks it).

The file is streamed from one SELECT on a connection of its own (``app.ledger_export``): the
request's session is finished when the response starts, and the body may take a while.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Request, get
from litestar.exceptions import ValidationException
from litestar.params import Parameter
from litestar.response import Stream, Template

from app.admin.pages import admin_page
from app.i18n import gettext as _
from app.ledger_export.service import export_csv
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES",)

Since = Annotated[str, Parameter(max_length=10)]


@get("/ledger", name="admin:ledger", opt={READ_ONLY_OPT: True})
async def ledger_page(request: Request[Any, Any, Any]) -> Template:
    return admin_page(request, "ledger.html", {"today": date.today().isoformat()}, section="admin:ledger")


def _since(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
    except ValueError:
        raise ValidationException(_("The date must be like 2026-01-31.")) from None


@get("/ledger/export.csv", name="admin:ledger_export", opt={READ_ONLY_OPT: True})
async def ledger_export(request: Request[Any, Any, Any], since: Since = "") -> Stream:
    """Every entry created on or after ``since`` (a UTC day; all of them without it), streamed."""
    start = _since(since.strip())
    config = request.app.plugins.get(SQLAlchemyPlugin).config[0]
    if not isinstance(config, SQLAlchemyAsyncConfig):
        raise TypeError("the ledger export needs the async SQLAlchemy config")
    engine = config.get_engine()

    async def body() -> AsyncIterator[str]:
        async with engine.connect() as conn:
            async for chunk in export_csv(conn, since=start):
                yield chunk

    name = f"ledger-since-{since.strip()}.csv" if start else "ledger.csv"
    return Stream(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


ROUTES: list[Any] = [ledger_page, ledger_export]
