"""``/admin``: revenue per currency and day, orders by state, webhook health, the last reconciliation.

Every figure is one indexed query (``bench/admin_bench.py`` times the page with 100,000 orders
and 1,000,000 ledger entries); the revenue chart is SVG drawn here, so it needs no JavaScript.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from litestar import Request, get
from litestar.response import Template
from sqlalchemy import ColumnElement, Select, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.account_page import format_when
from app.admin.pages import admin_page
from app.catalogue.money import format_money
from app.catalogue.reload import CatalogueHolder
from app.host_webhooks.models import HostDelivery
from app.i18n import gettext as _
from app.money.models import Order, OrderStatus, StripeEvent
from app.reconcile.models import ReconcileRun
from app.web.transactions import READ_ONLY_OPT
from app.webhooks.models import WebhookRejection

__all__ = ("FAILED_OUTCOME", "ROUTES", "Chart", "revenue_chart")

DAYS: Final = 30
CHART_WIDTH: Final = 600
CHART_HEIGHT: Final = 160
LABEL_SPACE: Final = 18
TICK_HALF_WIDTH: Final = 16
"""Half the width of a day label ("11-02" at 10 px is about 30 px): no label is centred closer to
an edge, or the browser cuts it off."""

FAILED_OUTCOME: Final = StripeEvent.outcome.like(literal_column("'failed: %'"))
"""Events whose effect failed (``app.money.event_store.FAILED_PREFIX``). Written as a literal so
that it is the very term of the partial index ``ix_stripe_event_failed``, which both databases
then count from instead of reading every stored event."""


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: str
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """One currency's bars (the day's takings) for the last ``DAYS`` days."""

    currency: str
    total: str
    top: str
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT + LABEL_SPACE
    baseline: int = CHART_HEIGHT


def revenue_chart(currency: str, by_day: dict[date, int], first: date, locale: str) -> Chart:
    """Bars scaled to the best day; every fifth day is labelled under the axis."""
    days = [first + timedelta(days=n) for n in range(DAYS)]
    top = max(by_day.values(), default=0)
    slot = CHART_WIDTH / DAYS
    bars = []
    for n, day in enumerate(days):
        amount = by_day.get(day, 0)
        height = (CHART_HEIGHT - 4) * amount / top if top else 0
        bars.append(
            Bar(
                x=round(n * slot + 1, 2),
                y=round(CHART_HEIGHT - height, 2),
                width=round(slot - 2, 2),
                height=round(height, 2),
                day=day.isoformat(),
                label=format_money(amount, currency, locale),
            )
        )
    edge = CHART_WIDTH - TICK_HALF_WIDTH
    ticks = [
        (round(min(max(n * slot + slot / 2, TICK_HALF_WIDTH), edge), 2), days[n].strftime("%m-%d"))
        for n in range(0, DAYS, 5)
    ]
    return Chart(
        currency=currency.upper(),
        total=format_money(sum(by_day.values()), currency, locale),
        top=format_money(top, currency, locale),
        bars=bars,
        ticks=ticks,
    )


def _day(dialect: str, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, in the database's own words."""
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite keeps UTC text, "YYYY-MM-DD HH:MM:SS"


def revenue_query(dialect: str, first: date) -> Select[Any]:
    """What paid orders brought in per currency and day since ``first``, read from
    ``ix_purchase_order_revenue`` alone (it carries every column named here).

    What the buyer paid (after a promotion code, with any tax), not the list price; orders paid
    before that was recorded count their snapshot ``amount``.
    """
    day = _day(dialect, Order.fulfilled_at)
    return (
        select(Order.currency, day, func.sum(func.coalesce(Order.amount_paid, Order.amount)))
        .where(
            Order.status == OrderStatus.PAID.value,
            Order.fulfilled_at >= datetime(*first.timetuple()[:3], tzinfo=UTC),
        )
        .group_by(Order.currency, day)
    )


async def revenue(db: AsyncSession, today: date, locale: str) -> list[Chart]:
    """Paid orders' takings (gross, by the day they were credited) per currency."""
    first = today - timedelta(days=DAYS - 1)
    rows = await db.execute(revenue_query(db.get_bind().dialect.name, first))
    by_currency: dict[str, dict[date, int]] = {}
    for currency, when, amount in rows:
        shown = when if isinstance(when, date) else date.fromisoformat(str(when))
        by_currency.setdefault(str(currency).lower(), {})[shown] = int(amount or 0)
    return [revenue_chart(c, days, first, locale) for c, days in sorted(by_currency.items())]


REVENUE_TTL: Final = 5.0
REVENUE_CACHE: Final = "admin_revenue"


async def cached_revenue(
    request: Request[Any, Any, Any], db: AsyncSession, today: date, locale: str
) -> list[Chart]:
    """:func:`revenue`, kept for ``REVENUE_TTL`` seconds per process and language.

    Measured reason (bench/admin_bench.py, 100,000 orders): the 30 days' aggregate reads ~27,000
    index entries, 20-25 ms of the dashboard's 48 ms p50 on SQLite, and admins reload the page;
    a few seconds' staleness of past days' takings costs nothing. Everything else on the page
    (orders by state, the review queue, webhook health) is read live.
    """
    cache: dict[tuple[str, date], tuple[float, list[Chart]]] = request.app.state.setdefault(REVENUE_CACHE, {})
    key = (locale, today)
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    charts = await revenue(db, today, locale)
    cache.clear()  # one language's and one day's at a time is all a dashboard needs
    cache[key] = (now + REVENUE_TTL, charts)
    return charts


async def orders_by_state(db: AsyncSession) -> dict[str, int]:
    rows = await db.execute(select(Order.status, func.count()).group_by(Order.status))
    counts = {status.value: 0 for status in OrderStatus}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


@dataclass(frozen=True, slots=True)
class WebhookHealth:
    last_received: datetime | None
    events_last_hour: int
    refused_last_hour: dict[str, int]
    failed_effects: int
    pending_deliveries: int

    @property
    def refused_total(self) -> int:
        return sum(self.refused_last_hour.values())

    def age_seconds(self, now: datetime) -> int | None:
        if self.last_received is None:
            return None
        received = self.last_received if self.last_received.tzinfo else self.last_received.replace(tzinfo=UTC)
        return max(int((now - received).total_seconds()), 0)


async def webhook_health(db: AsyncSession, now: datetime) -> WebhookHealth:
    hour_ago = now - timedelta(hours=1)
    webhook = StripeEvent.source == "webhook"
    last = await db.scalar(
        select(StripeEvent.received_at).where(webhook).order_by(StripeEvent.received_at.desc()).limit(1)
    )
    recent = await db.scalar(select(func.count()).where(webhook, StripeEvent.received_at >= hour_ago))
    refused = await db.execute(
        select(WebhookRejection.reason, func.sum(WebhookRejection.count))
        .where(WebhookRejection.minute >= int(hour_ago.timestamp()) // 60 * 60)
        .group_by(WebhookRejection.reason)
    )
    failed = await db.scalar(select(func.count()).select_from(StripeEvent).where(FAILED_OUTCOME))
    pending = await db.scalar(
        select(func.count()).select_from(HostDelivery).where(HostDelivery.status == "pending")
    )
    return WebhookHealth(
        last_received=last,
        events_last_hour=int(recent or 0),
        refused_last_hour={str(r): int(n or 0) for r, n in refused},
        failed_effects=int(failed or 0),
        pending_deliveries=int(pending or 0),
    )


def _age(seconds: int | None) -> str:
    if seconds is None:
        return _("never")
    if seconds < 120:
        return _("%(n)s seconds ago") % {"n": seconds}
    if seconds < 7200:
        return _("%(n)s minutes ago") % {"n": seconds // 60}
    if seconds < 172_800:
        return _("%(n)s hours ago") % {"n": seconds // 3600}
    return _("%(n)s days ago") % {"n": seconds // 86_400}


@get("/", name="admin:dashboard", opt={READ_ONLY_OPT: True})
async def dashboard(
    request: Request[Any, Any, Any], db_session: AsyncSession, catalogue: CatalogueHolder
) -> Template:
    now = datetime.now(UTC)
    locale = i18n.current_locale()
    by_state = await orders_by_state(db_session)
    health = await webhook_health(db_session, now)
    last_run = await db_session.scalar(select(ReconcileRun).order_by(ReconcileRun.id.desc()).limit(1))
    return admin_page(
        request,
        "dashboard.html",
        {
            "charts": await cached_revenue(request, db_session, now.date(), i18n.babel_name(locale)),
            "days": DAYS,
            "by_state": by_state,
            "needs_review": by_state[OrderStatus.NEEDS_REVIEW.value],
            "health": health,
            "last_received": format_when(health.last_received, locale) if health.last_received else "",
            "age": _age(health.age_seconds(now)),
            "last_run": last_run,
            "last_run_when": format_when(last_run.finished_at, locale) if last_run else "",
            "last_run_age": _age(int((now - last_run.finished_at).total_seconds()) if last_run else None),
            "catalogue": catalogue.catalogue,
            "catalogue_loaded": format_when(catalogue.catalogue.loaded_at, locale),
            "catalogue_path": str(catalogue.path),
        },
        section="admin:dashboard",
    )


ROUTES: list[Any] = [dashboard]
