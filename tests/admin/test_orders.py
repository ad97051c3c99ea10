"""The orders list (filters, search, pages), its CSV, the detail page, and actions that need no Stripe."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from app.admin.order_queries import AskedRefund, OrderStory
from app.money.models import Order
from app.settings import Settings
from tests.admin.support import ADMIN_EMAIL, admin_post, an_order, client_as, insert_rows, make_user


def _listed(client: TestClient[Any], **query: str) -> list[int]:
    page = client.get("/admin/orders", params=query)
    assert page.status_code == 200, page.text[:500]
    return [int(i) for i in re.findall(r'<tr data-order="(\d+)"', page.text)]


def _db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.database_url.split("///", 1)[1])


@pytest.fixture
def shop(sqlite_settings: Settings) -> dict[str, Any]:
    return _shop(sqlite_settings)


@pytest.fixture
def any_shop(settings: Settings) -> dict[str, Any]:
    """On each database (the filters' date comparisons and the page of ids are plain SQL on both)."""
    return _shop(settings)


def _shop(settings: Settings) -> dict[str, Any]:
    """Two buyers' orders in several states, packs and days."""
    make_user(settings, ADMIN_EMAIL, is_admin=True)
    ann = make_user(settings, "ann@example.com")
    bob = make_user(settings, "=bob@example.com")  # a spreadsheet would run this as a formula
    day = lambda d: datetime(2026, 11, d, 12, tzinfo=UTC)  # noqa: E731
    ids = insert_rows(
        settings,
        Order.__table__,
        [
            an_order(
                ann,
                status="paid",
                created_at=day(1),
                stripe_session_id="cs_a1",
                stripe_payment_intent_id="pi_a1",
            ),
            an_order(ann, status="open", created_at=day(2), stripe_session_id="cs_a2"),
            an_order(bob, status="paid", pack_id="coins-500", created_at=day(3), stripe_session_id="cs_b1"),
            an_order(
                bob, status="needs_review", created_at=day(4), stripe_session_id="cs_b2", status_reason="odd"
            ),
        ],
    )
    return {"settings": settings, "ids": ids, "ann": ann, "bob": bob}


def test_filters_and_search_pick_the_orders_they_name(any_shop: dict[str, Any]) -> None:
    a1, a2, b1, b2 = any_shop["ids"]
    with client_as(any_shop["settings"], ADMIN_EMAIL) as client:
        assert _listed(client) == [b2, b1, a2, a1]  # newest first
        assert _listed(client, state="paid") == [b1, a1]
        assert _listed(client, pack="coins-500") == [b1]
        assert _listed(client, **{"from": "2026-11-02", "to": "2026-11-03"}) == [b1, a2]
        assert _listed(client, q="ANN@example.com ") == [a2, a1]
        assert _listed(client, q=str(b2)) == [b2]
        assert _listed(client, q="cs_a2") == [a2]
        assert _listed(client, q="pi_a1") == [a1]
        assert _listed(client, q="99999999999999999999999") == []
        assert _listed(client, q="nobody@example.com", state="paid") == []
        assert _listed(client, q="ann@example.com", state="paid") == [a1]
        page = client.get("/admin/orders", params={"state": "needs_review"})
        assert 'data-total="1"' in page.text
        for bad in ({"state": "bogus"}, {"from": "yesterday"}, {"page": "0"}, {"q": "x" * 300}):
            assert client.get("/admin/orders", params=bad).status_code == 400, bad


def test_the_csv_is_the_filtered_list_streamed_with_formulas_defused(any_shop: dict[str, Any]) -> None:
    a1, _a2, b1, _b2 = any_shop["ids"]
    with client_as(any_shop["settings"], ADMIN_EMAIL) as client:
        answer = client.get("/admin/orders.csv", params={"state": "paid"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [int(r["order_id"]) for r in rows] == [b1, a1]
        assert rows[0]["email"] == "'=bob@example.com"
        assert (rows[1]["amount"], rows[1]["amount_minor"], rows[1]["currency"]) == ("1.99", "199", "usd")
        assert rows[1]["stripe_payment_intent_id"] == "pi_a1"
        everything = list(csv.DictReader(io.StringIO(client.get("/admin/orders.csv").text)))
        assert len(everything) == 4


def test_the_list_pages_keep_their_filters(sqlite_settings: Settings) -> None:
    make_user(sqlite_settings, ADMIN_EMAIL, is_admin=True)
    buyer = make_user(sqlite_settings, "many@example.com")
    ids = insert_rows(sqlite_settings, Order.__table__, [an_order(buyer, status="paid") for _ in range(60)])
    with client_as(sqlite_settings, ADMIN_EMAIL) as client:
        first = client.get("/admin/orders", params={"state": "paid"}).text
        assert 'data-total="60"' in first
        assert 'href="?state=paid&amp;page=2"' in first
        assert _listed(client, state="paid", page="2") == sorted(ids, reverse=True)[50:]


def test_the_detail_page_shows_snapshot_ids_and_entries(shop: dict[str, Any]) -> None:
    a1 = shop["ids"][0]
    with client_as(shop["settings"], ADMIN_EMAIL) as client:
        page = client.get(f"/admin/orders/{a1}")
        assert page.status_code == 200
        for text in ("ann@example.com", "coins-100", "cs_a1", "pi_a1", "$1.99"):
            assert text in page.text, text
        assert client.get("/admin/orders/999999").status_code == 404
        assert client.get(f"/admin/orders/{2**70}").status_code == 400


def test_closing_a_review_needs_a_reason_and_is_audited(shop: dict[str, Any]) -> None:
    a1, _a2, _b1, b2 = shop["ids"]
    with client_as(shop["settings"], ADMIN_EMAIL) as client:
        refused = admin_post(client, f"/admin/orders/{b2}/resolve", resolution="close", reason=" ")
        assert refused.status_code == 400
        assert "Please say why." in refused.text
        odd = admin_post(client, f"/admin/orders/{b2}/resolve", resolution="explode", reason="x")
        assert odd.status_code == 400
        with _db(shop["settings"]) as db:
            assert db.execute("SELECT status FROM purchase_order WHERE id = ?", (b2,)).fetchone() == (
                "needs_review",
            )
            assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
        done = admin_post(client, f"/admin/orders/{b2}/resolve", resolution="close", reason="test order")
        assert done.status_code == 303
        assert done.headers["location"] == f"/admin/orders/{b2}"
        again = admin_post(client, f"/admin/orders/{b2}/resolve", resolution="close", reason="twice")
        assert again.status_code == 409
        not_review = admin_post(client, f"/admin/orders/{a1}/resolve", resolution="close", reason="no")
        assert not_review.status_code == 409
        audit = client.get("/admin/audit").text
        assert "order.resolve.close" in audit
        assert "test order" in audit
    with _db(shop["settings"]) as db:
        assert db.execute(
            "SELECT status, status_reason FROM purchase_order WHERE id = ?", (b2,)
        ).fetchone() == (
            "canceled",
            "closed by an admin: test order",
        )
        rows = db.execute("SELECT action, subject_type, subject_id, reason FROM audit_log").fetchall()
        assert rows == [("order.resolve.close", "order", str(b2), "test order")]


def test_a_refund_asks_for_a_sane_amount_and_a_reason_before_stripe_is_called(shop: dict[str, Any]) -> None:
    a1, a2, *_ = shop["ids"]
    settings = shop["settings"]
    with _db(settings) as db:  # credited, as fulfilment leaves it
        db.execute("UPDATE purchase_order SET fulfilled_at = CURRENT_TIMESTAMP WHERE id = ?", (a1,))
    with client_as(settings, ADMIN_EMAIL) as client:
        token = "t" * 24
        for amount, reason, words in (
            ("2.00", "too much", "at most $1.99"),
            ("0", "zero", "more than zero"),
            ("1.999", "three decimals", "such as 4.99"),
            ("1e3", "exponent", "such as 4.99"),
            ("-1.00", "negative", "such as 4.99"),
            ("\u0661.\u0660\u0660", "Arabic-Indic digits, which Decimal reads as 1.00", "such as 4.99"),
            ("1.00", "", "Please say why."),
        ):
            answer = admin_post(
                client, f"/admin/orders/{a1}/refund", amount=amount, reason=reason, token=token
            )
            assert answer.status_code == 400, (amount, answer.status_code)
            assert words in answer.text, words
        expired = admin_post(client, f"/admin/orders/{a1}/refund", amount="1.00", reason="ok", token="")
        assert expired.status_code == 400
        uncredited = admin_post(client, f"/admin/orders/{a2}/refund", amount="1.00", reason="ok", token=token)
        assert uncredited.status_code == 409
    with _db(settings) as db:
        assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)


def test_what_is_left_to_refund_is_what_the_buyer_paid_not_the_list_price() -> None:
    """A discounted order: Stripe would refuse a refund of the list price (more than it charged)."""
    order = Order(amount=499, amount_paid=249, currency="usd")
    story = OrderStory(order=order, email="a@example.com", entries=[], events=[], actions=[], refunded=0)
    assert story.refundable == 249
    story.asked.append(AskedRefund("re_1", 100, arrived=False))
    assert story.refundable == 149
    assert (
        OrderStory(Order(amount=499, currency="usd"), "b@example.com", [], [], [], refunded=99).refundable
        == 400
    )
