"""``/admin``: the dashboard."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.pages import admin_page
from app.money.models import Order, OrderStatus
from app.web.transactions import READ_ONLY_OPT


async def orders_by_state(db: AsyncSession) -> dict[str, int]:
    rows = await db.execute(select(Order.status, func.count()).group_by(Order.status))
    counts = {status.value: 0 for status in OrderStatus}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


@get("/", name="admin:dashboard", opt={READ_ONLY_OPT: True})
async def dashboard(request: Request[Any, Any, Any], db_session: AsyncSession) -> Template:
    by_state = await orders_by_state(db_session)
    return admin_page(
        request,
        "dashboard.html",
        {"by_state": by_state, "needs_review": by_state[OrderStatus.NEEDS_REVIEW.value]},
        section="admin:dashboard",
    )


ROUTES: list[Any] = [dashboard]
