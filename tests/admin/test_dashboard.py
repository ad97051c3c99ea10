"""The dashboard's figures: revenue per currency and day, orders by state, webhook health, reconciliation."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.dialects import sqlite

from app.admin.dashboard import TICK_HALF_WIDTH, revenue_chart, revenue_query
from app.host_webhooks.models import HostDelivery, HostEvent, WebhookEndpoint
from app.money.models import Order, StripeEvent
from app.reconcile.models import ReconcileRun
from app.reconcile.service import ReconcileSummary, run_record
from app.settings import Settings
from tests.admin.support import ADMIN_EMAIL, an_order, client_as, insert_rows, make_user
from tests.support.shop import run_sql, wait_for


def _count(page: str, css: str) -> int:
    found = re.search(rf'class="{css}[^"]*" data-count="(\d+)"', page)
    assert found, css
    return int(found.group(1))


def _bars(page: str, currency: str) -> dict[str, str]:
    """day → the bar's tooltip, of the currency's chart."""
    figure = re.search(rf'<figure class="revenue" data-currency="{currency}">(.*?)</figure>', page, re.S)
    assert figure, currency
    return dict(re.findall(r'data-day="([\d-]+)"><title>[\d-]+: ([^<]+)</title>', figure.group(1)))


def test_the_dashboard_adds_up_what_happened(settings: Settings) -> None:
    """Both databases: the day of a timestamp is said differently in each."""
    make_user(settings, ADMIN_EMAIL, is_admin=True)
    buyer = make_user(settings, "buyer@example.com")
    now = datetime.now(UTC)
    today, yesterday, long_ago = now, now - timedelta(days=1), now - timedelta(days=45)
    insert_rows(
        settings,
        Order.__table__,
        [
            # What was paid counts: a promotion code took 1.00 off, tax added 0.30 on top.
            an_order(
                buyer, status="paid", amount=199, amount_discount=100, amount_paid=99, fulfilled_at=today
            ),
            an_order(buyer, status="paid", amount=500, fulfilled_at=today),  # paid before 0010
            an_order(
                buyer, status="paid", amount=300, amount_tax=30, amount_paid=330, fulfilled_at=yesterday
            ),
            an_order(buyer, status="paid", amount=1000, currency="eur", fulfilled_at=yesterday),
            an_order(buyer, status="paid", amount=7777, fulfilled_at=long_ago),  # outside the 30 days
            an_order(buyer, status="needs_review", amount=100),
            an_order(buyer, status="needs_review", amount=100),
            an_order(buyer, status="open"),
        ],
    )
    event = {"type": "checkout.session.completed", "created": 1, "payload": "{}"}
    insert_rows(
        settings,
        StripeEvent.__table__,
        [
            {
                **event,
                "id": "evt_old",
                "source": "webhook",
                "outcome": "credited",
                "received_at": now - timedelta(hours=3),
            },
            {
                **event,
                "id": "evt_new",
                "source": "webhook",
                "outcome": "failed: amount is a str",
                "received_at": now - timedelta(minutes=5),
            },
            {**event, "id": "evt_rec", "source": "reconcile", "outcome": "credited", "received_at": now},
        ],
    )
    insert_rows(
        settings,
        HostEvent.__table__,
        [{"id": "hev_1", "type": "balance.credited", "payload": "{}", "created": 1}],
    )
    endpoint = insert_rows(
        settings,
        WebhookEndpoint.__table__,
        [{"url": "https://host.example/hook", "secret": "s", "events": "*"}],
    )[0]
    later = int(now.timestamp()) + 3600  # not due: the app's deliverer leaves it pending
    delivery = {"event_id": "hev_1", "endpoint_id": endpoint, "next_attempt_at": later, "give_up_at": later}
    insert_rows(settings, HostDelivery.__table__, [{**delivery, "status": "pending"}])
    summary = ReconcileSummary(events_listed=4, orders_checked=2)
    summary.orders_fixed.append((12, "open", "paid"))
    record = run_record(summary, now - timedelta(minutes=2))
    columns = {c.name: getattr(record, c.name) for c in ReconcileRun.__table__.columns if c.name != "id"}
    insert_rows(settings, ReconcileRun.__table__, [columns])

    with client_as(settings, ADMIN_EMAIL) as client:
        refused = client.post("/webhooks/stripe", content=b"{}", headers={"stripe-signature": "t=1,v1=00"})
        assert refused.status_code == 400
        page = wait_for(
            lambda: (text := client.get("/admin").text) and _count(text, "refused-hour") == 1 and text
        )

    usd = _bars(page, "USD")
    assert len(usd) == 30
    assert usd[today.date().isoformat()] == "$5.99"
    assert usd[yesterday.date().isoformat()] == "$3.30"
    assert sum(1 for label in usd.values() if label != "$0.00") == 2
    assert _bars(page, "EUR")[yesterday.date().isoformat()] == "€10.00"
    assert "$9.29 in total, best day $5.99" in page
    assert re.search(r'<li data-state="paid">.*?data-count="5"', page)
    assert _count(page, "needs-review") == 2
    assert _count(page, "events-hour") == 1  # webhook deliveries only, not reconciliation's
    assert _count(page, "failed-effects") == 1
    assert _count(page, "pending-deliveries") == 1
    version = re.search(r'<p class="catalogue-status" data-version="([0-9a-f]+)">', page)
    assert version, "the dashboard names the live catalogue's version and when it was loaded"
    assert f"Version {version.group(1)}, loaded " in page
    assert "5 minutes ago" in page
    assert "fixed 1 order(s)" in page
    assert "order 12: open -&gt; paid" in page


def test_the_revenue_chart_labels_stay_inside_the_drawing() -> None:
    """The first day's label is centred under its bar; at the very left edge half of it was cut off."""
    chart = revenue_chart("usd", {date(2026, 11, 2): 499}, date(2026, 11, 2), "en")
    assert chart.ticks[0][1] == "11-02"
    assert all(TICK_HALF_WIDTH <= x <= chart.width - TICK_HALF_WIDTH for x, _label in chart.ticks)


def test_the_revenue_sum_reads_the_covering_index_alone(sqlite_settings: Settings) -> None:
    """SQLite's plan: paid revenue (COALESCE(amount_paid, amount)) is still an index-only scan."""
    settings = sqlite_settings
    make_user(settings, ADMIN_EMAIL, is_admin=True)
    query = revenue_query("sqlite", date(2026, 11, 2)).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    plan = " ".join(str(row["detail"]) for row in run_sql(settings, f"EXPLAIN QUERY PLAN {query}"))
    assert "USING COVERING INDEX ix_purchase_order_revenue" in plan, plan
