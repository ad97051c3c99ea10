"""``/admin/orders``: the filtered list, its CSV export, and one order's detail page."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import AsyncIterator
from datetime import date
from functools import partial
from typing import Annotated, Any, Final

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import Parameter, QueryParameter
from litestar.response import Stream, Template
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import i18n
from app.accounts.account_page import format_when, kind_label
from app.admin.access import alchemy_config
from app.admin.order_queries import OrderFilters, OrderStory, counted, listed, one_page, order_story
from app.admin.pages import admin_page
from app.admin.paging import PageNumber, paginate
from app.catalogue.money import format_money, from_minor
from app.catalogue.reload import CatalogueHolder
from app.money.models import Order, OrderStatus
from app.web.params import RowId
from app.web.spreadsheet import cell
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES", "money_context")

Text = Annotated[str | None, Parameter(max_length=255)]
State = Annotated[OrderStatus | None, QueryParameter(name="state")]
"""``?state=``; ``state`` itself is a name Litestar keeps for the app's state."""
Since = Annotated[date | None, QueryParameter(name="from")]
Until = Annotated[date | None, QueryParameter(name="to")]

CSV_COLUMNS: Final = (
    "order_id",
    "created_at",
    "status",
    "email",
    "pack_id",
    "asset",
    "units",
    "bonus",
    "amount",
    "amount_minor",
    "currency",
    "stripe_session_id",
    "stripe_payment_intent_id",
    "fulfilled_at",
)
CSV_BATCH: Final = 1000


def _filters(
    state: OrderStatus | None, pack: str | None, since: date | None, until: date | None, q: str | None
) -> OrderFilters:
    return OrderFilters(state=state, pack=pack or None, since=since, until=until, q=(q or "").strip() or None)


def _money(minor: int, currency: str) -> str:
    return format_money(minor, currency, i18n.babel_name(i18n.current_locale()))


@get("/orders", name="admin:orders", opt={READ_ONLY_OPT: True})
async def orders_list(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    status: State = None,
    pack: Text = None,
    since: Since = None,
    until: Until = None,
    q: Text = None,
    page: PageNumber = 1,
) -> Template:
    filters = _filters(status, pack, since, until, q)
    found = await paginate(
        db_session, partial(one_page, filters), page, count=counted(filters), scalars=False
    )
    locale = i18n.current_locale()
    rows = [
        {
            "order": o,
            "email": email,
            "price": _money(o.amount, o.currency),
            "when": format_when(o.created_at, locale),
        }
        for o, email in found.items
    ]
    return admin_page(
        request,
        "orders.html",
        {
            "rows": rows,
            "page": found,
            "filters": filters,
            "query": filters.as_query(),
            "states": [s.value for s in OrderStatus],
            "packs": [p.id for p in catalogue.catalogue.packs],
        },
        section="admin:orders",
    )


def _csv_row(order: Order, email: str) -> list[str]:
    values: list[object] = [
        order.id,
        order.created_at,
        order.status,
        email,
        order.pack_id,
        order.asset,
        order.units,
        order.bonus,
        from_minor(order.amount, order.currency),
        order.amount,
        order.currency,
        order.stripe_session_id,
        order.stripe_payment_intent_id,
        order.fulfilled_at,
    ]
    return [cell(v) for v in values]


async def csv_lines(engine: AsyncEngine, filters: OrderFilters) -> AsyncIterator[bytes]:
    """The filtered orders as CSV, a batch of rows per chunk.

    Read on a connection of its own: the request's session is committed and closed when the
    response starts, before the body is streamed. Rows are fetched in batches (a server-side
    cursor on PostgreSQL), so memory stays flat however many orders match.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async with AsyncSession(engine) as db:
        result = await db.stream(listed(filters).execution_options(yield_per=CSV_BATCH))
        async for batch in result.partitions(CSV_BATCH):
            for order, email in batch:
                writer.writerow(_csv_row(order, email))
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            db.expunge_all()
    if buffer.tell():
        yield buffer.getvalue().encode()


@get("/orders.csv", name="admin:orders:csv", opt={READ_ONLY_OPT: True})
async def orders_csv(
    request: Request[Any, Any, Any],
    status: State = None,
    pack: Text = None,
    since: Since = None,
    until: Until = None,
    q: Text = None,
) -> Stream:
    filters = _filters(status, pack, since, until, q)
    engine = alchemy_config(request).get_engine()
    return Stream(
        csv_lines(engine, filters),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="orders.csv"', "cache-control": "no-store"},
    )


def form_token() -> str:
    """A fresh one-time token for a refund form: the Stripe idempotency key of what it sends."""
    return secrets.token_urlsafe(18)


def money_context(story: OrderStory) -> dict[str, Any]:
    """The order's money as shown: price, refunded, pending and what is left, in its currency."""
    order = story.order
    return {
        "price": _money(order.amount, order.currency),
        "refunded": _money(story.refunded, order.currency),
        "pending": _money(story.pending_amount, order.currency),
        "refundable": _money(story.refundable, order.currency),
        "refundable_major": str(from_minor(story.refundable, order.currency)),
    }


async def order_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    order_id: int,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The detail page; the actions answer with it too when they refuse what was sent."""
    story = await order_story(db, order_id)
    if story is None:
        raise NotFoundException(detail="no such order")
    locale = i18n.current_locale()
    timeline = [
        {
            "when": format_when(m.at, locale),
            "kind": m.kind,
            "title": kind_label(m.title) if m.kind == "entry" else m.title,
            "detail": m.detail,
        }
        for m in story.timeline()
    ]
    return admin_page(
        request,
        "order.html",
        {
            "story": story,
            "order": story.order,
            "money": money_context(story),
            "timeline": timeline,
            "entries": [
                {"entry": e, "kind": kind_label(e.kind), "when": format_when(e.created_at, locale)}
                for e in story.entries
            ],
            "can_refund": story.order.fulfilled_at is not None
            and story.order.stripe_payment_intent_id is not None
            and story.refundable > 0,
            "needs_review": story.order.status == OrderStatus.NEEDS_REVIEW,
            "refund_token": form_token(),
            "errors": errors or {},
            "form": form or {},
        },
        section="admin:orders",
        status_code=status_code,
    )


@get("/orders/{order_id:int}", name="admin:order", opt={READ_ONLY_OPT: True})
async def order_detail(
    request: Request[Any, Any, Any], db_session: AsyncSession, order_id: RowId
) -> Template:
    return await order_page(request, db_session, order_id)


ROUTES: list[Any] = [orders_list, orders_csv, order_detail]
