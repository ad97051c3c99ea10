"""The success page, its polled status fragment, the cancel page and the account page."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from app.checkout.service import claim_check
from app.settings import Settings
from tests.support.shop import Shop, run_shop, wait_for


def _status_url(page: str) -> str:
    found = re.search(r'hx-get="([^"]+)"', page)
    assert found, page
    return found.group(1).replace("&amp;", "&")


def test_success_page_polls_until_credited_then_stops(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-500")
    page = buyer.client.get("/checkout/success", params={"session_id": sid})
    assert page.status_code == 200
    assert 'data-status="open"' in page.text
    assert 'hx-trigger="every 1s"' in page.text
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.text
    url = _status_url(page.text)

    waiting = buyer.client.get(url)
    assert waiting.status_code == 200
    assert 'hx-trigger="every 1s"' in waiting.text

    assert shop.pay(sid)["status"] == "succeeded"
    shop.flush()
    done = wait_for(lambda: (r := buyer.client.get(url)).status_code == 286 and r)
    assert 'data-status="paid"' in done.text
    assert "hx-get" not in done.text
    assert "hx-trigger" not in done.text
    assert "We added 550 coins to your balance." in done.text
    assert "Your balance is now 550 coins." in done.text
    # The cached fragment is served again, identically.
    again = buyer.client.get(url)
    assert (again.status_code, again.text) == (286, done.text)

    final_page = buyer.client.get("/checkout/success", params={"session_id": sid})
    assert "<noscript><meta" not in final_page.text
    assert buyer.balances() == {"coins": 550, "quota": 0}


def test_only_the_buyer_sees_an_order(shop: Shop) -> None:
    owner = shop.buyer().sign_up()
    sid = owner.start("coins-100")
    order_id = shop.order(sid)["id"]
    shop.pay(sid)
    shop.flush()
    wait_for(lambda: owner.status(sid) == "paid")
    owner.client.get(f"/checkout/status/{order_id}")  # warm the fragment cache

    stranger = shop.buyer().sign_up()
    assert stranger.client.get("/checkout/success", params={"session_id": sid}).status_code == 404
    assert stranger.client.get(f"/checkout/status/{order_id}").status_code == 404
    assert stranger.client.get("/checkout/cancel", params={"order": order_id}).status_code == 404
    assert (
        stranger.client.get("/checkout/success", params={"session_id": "cs_test_unknown"}).status_code == 404
    )
    assert stranger.client.get("/checkout/success").status_code == 404

    visitor = shop.buyer()
    bounced = visitor.client.get("/checkout/success", params={"session_id": sid})
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/sign-in?next=" + quote(
        f"/checkout/success?session_id={sid}", safe="/"
    )
    assert visitor.client.get(f"/checkout/status/{order_id}").status_code == 401


def test_a_lost_webhook_heals_while_the_buyer_waits(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    shop.sandbox.control("POST", "deliveries/pause")
    shop.pay(sid)
    # No webhook will come: the success page asks Stripe itself (at most every 3 s per order).
    wait_for(lambda: buyer.status(sid) == "paid", timeout=10, interval=0.5)
    assert buyer.balances()["coins"] == 100
    shop.sandbox.control("POST", "deliveries/resume")
    shop.flush()
    entries = shop.rows("SELECT kind, units FROM ledger_entry")
    assert entries == [{"kind": "purchase", "units": 100}]


async def _seed_open_order(sessions: Any) -> None:
    """One buyer (id 1) with one open order on session ``cs_1``, written directly."""
    from sqlalchemy import text

    from app.reconcile.service import unit_of_work

    async with unit_of_work(sessions) as db:
        await db.execute(
            text(
                "INSERT INTO user_account (email, password_hash, is_admin, created_at, updated_at) "
                "VALUES ('t@example.com', 'x', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        await db.execute(
            text(
                "INSERT INTO purchase_order (user_id, pack_id, pack_name, asset, units, bonus,"
                " amount, currency, locale, status, stripe_session_id, created_at, updated_at)"
                " VALUES (1, 'coins-100', 'x', 'coins', 100, 0, 99, 'USD', 'en', 'open',"
                " 'cs_1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )


def test_checks_are_throttled_per_order_in_the_database(settings: Settings) -> None:
    from sqlalchemy import text

    from app.db.config import make_engine
    from app.reconcile.service import session_factory, unit_of_work

    async def run() -> list[bool]:
        engine = make_engine(settings)
        sessions = session_factory(engine)
        try:
            await _seed_open_order(sessions)
            results = []
            for _ in range(3):
                async with unit_of_work(sessions) as db:
                    results.append(await claim_check(db, 1))
            async with unit_of_work(sessions) as db:
                await db.execute(text("UPDATE purchase_order SET status = 'paid'"))
            async with unit_of_work(sessions) as db:
                results.append(await claim_check(db, 1, interval=timedelta(0)))
            return results
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == [True, False, False, False]


def test_cancel_expires_the_session_and_offers_a_retry(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    link = shop.session(sid)["cancel_url"].removeprefix(shop.url)  # the link Stripe was given
    page = buyer.client.get(link)
    assert page.status_code == 200
    assert 'data-status="canceled"' in page.text
    assert 'name="pack" value="coins-100"' in page.text
    assert shop.session(sid)["status"] == "expired"
    assert shop.order(sid)["status"] == "canceled"
    # A second visit changes nothing.
    assert 'data-status="canceled"' in buyer.client.get(link).text
    # Buy again starts a fresh order.
    again = buyer.buy("coins-100")
    assert again.status_code == 303
    assert len(shop.rows("SELECT id FROM purchase_order")) == 2
    assert shop.rows("SELECT id FROM ledger_entry") == []


def test_cancel_after_paying_credits_instead(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    link = shop.session(sid)["cancel_url"].removeprefix(shop.url)
    shop.sandbox.control("POST", "deliveries/pause")
    shop.pay(sid)
    page = buyer.client.get(link)
    assert 'data-status="paid"' in page.text
    assert shop.order(sid)["status"] == "paid"
    assert buyer.balances()["coins"] == 100


def test_bank_debit_waits_then_credits(sqlite_shop: Shop) -> None:
    shop = sqlite_shop
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    assert shop.pay(sid, bank_account="000123456789")["status"] == "processing"
    shop.flush()
    wait_for(lambda: buyer.status(sid) == "awaiting_payment")
    page = buyer.client.get("/checkout/success", params={"session_id": sid})
    assert 'hx-trigger="every 5s"' in page.text
    account = buyer.client.get("/account").text
    assert 'class="pending" data-units="100"' in account
    assert "100 coins awaiting bank payment" in account
    shop.sandbox.control("POST", "clock/advance", seconds=60)
    wait_for(lambda: shop.order(sid)["status"] == "paid", timeout=20)
    assert buyer.balances()["coins"] == 100


def test_failed_bank_debit_credits_nothing(sqlite_shop: Shop) -> None:
    shop = sqlite_shop
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    shop.pay(sid, bank_account="000111111113")
    shop.sandbox.control("POST", "clock/advance", seconds=60)
    wait_for(lambda: shop.order(sid)["status"] == "failed", timeout=20)
    assert buyer.status(sid) == "failed"
    assert buyer.balances()["coins"] == 0


def test_account_page(sqlite_shop: Shop) -> None:
    shop = sqlite_shop
    visitor = shop.buyer()
    bounced = visitor.client.get("/account", params={"before": 5})
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/sign-in?next=/account%3Fbefore%3D5"

    buyer = shop.buyer().sign_up()
    empty = buyer.client.get("/account").text
    assert "No purchases yet." in empty
    assert "No balance changes yet." in empty
    assert buyer.balances() == {"coins": 0, "quota": 0}

    for _ in range(23):
        sid = buyer.start("quota-starter")
        shop.pay(sid)
    shop.flush()
    wait_for(lambda: len(shop.rows("SELECT id FROM ledger_entry")) == 23)
    page = buyer.client.get("/account").text
    rows = re.findall(r'data-entry="(\d+)"', page)
    assert len(rows) == 20
    assert rows == sorted(rows, key=int, reverse=True)
    more = re.search(r'href="(/account\?before=\d+)#entries" hx-get="([^"]+)"', page)
    assert more
    older = buyer.client.get(more.group(1)).text  # without JavaScript: a full page
    assert "<html" in older
    assert len(re.findall(r'data-entry="(\d+)"', older)) == 3
    fragment = buyer.client.get(more.group(2), headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert len(re.findall(r'data-entry="(\d+)"', fragment)) == 3
    assert "Show older" not in fragment
    assert "Purchase" in page
    assert "Paid" in page

    zh = buyer.client.get("/account", headers={"Accept-Language": "zh-CN"}, cookies={"lang": "zh"}).text
    assert "余额明细" in zh
    assert "已付款" in zh


def test_a_negative_balance_is_shown_as_owed(sqlite_shop: Shop) -> None:
    shop = sqlite_shop
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    shop.pay(sid)
    shop.flush()
    wait_for(lambda: shop.order(sid)["status"] == "paid")
    # Units spent, then the payment lost in a dispute: the buyer owes what was taken back.
    shop.rows("UPDATE balance SET available = -40")
    page = buyer.client.get("/account").text
    assert 'class="available" data-units="-40"' in page
    assert "40 coins owed" in page
    zh = buyer.client.get("/account", cookies={"lang": "zh"}).text
    assert "欠 40 金币" in zh


def test_concurrent_checks_of_one_order_let_one_in(settings: Settings) -> None:
    """The throttle holds when the polls race (several tabs, several workers), not only in turn."""

    from app.db.config import make_engine
    from app.reconcile.service import session_factory, unit_of_work

    async def run() -> list[bool]:
        engine = make_engine(settings)
        sessions = session_factory(engine)
        try:
            await _seed_open_order(sessions)

            async def poll() -> bool:
                async with unit_of_work(sessions) as db:
                    claimed = await claim_check(db, 1)
                    await asyncio.sleep(0.05)  # still in the transaction, as while asking Stripe
                    return claimed

            return list(await asyncio.gather(*(poll() for _ in range(8))))
        finally:
            await engine.dispose()

    assert sorted(asyncio.run(run())) == [False] * 7 + [True]


def test_polls_never_wait_for_sqlites_write_lock(sqlite_shop: Shop) -> None:
    """The poll reads in a deferred transaction: held write lock or not, it answers at once."""
    buyer = sqlite_shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    order_id = sqlite_shop.order(sid)["id"]
    url = f"/checkout/status/{order_id}"
    assert buyer.client.get(url).status_code == 200  # the first poll asks Stripe (a writer op)
    path = sqlite_shop.settings.database_url.split(":///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's one write lock
    try:
        started = time.monotonic()
        waiting = buyer.client.get(url)  # checked moments ago: nothing to write
        took = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert waiting.status_code == 200
    assert 'data-status="open"' in waiting.text
    assert took < 2, took


def test_a_poll_heals_a_lost_webhook_and_shows_the_credit_at_once(migrated_url: str, tmp_path: Path) -> None:
    """No webhook ever comes: the poll asks Stripe and credits (on SQLite through the money writer,
    outside the poll's read snapshot), and that same answer shows the order as the credit left it."""
    with run_shop(tmp_path, migrated_url, sandbox={"webhook_endpoints": []}) as shop:
        buyer = shop.buyer().sign_up()
        sid = buyer.start("coins-500")
        assert shop.pay(sid)["status"] == "succeeded"
        order_id = shop.order(sid)["id"]
        healed = buyer.client.get(f"/checkout/status/{order_id}")
        assert healed.status_code == 286, healed.text[:300]
        assert 'data-status="paid"' in healed.text
        assert "Your balance is now 550 coins." in healed.text
        assert buyer.balances() == {"coins": 550, "quota": 0}
        assert shop.rows("SELECT count(*) AS n FROM stripe_event") == [{"n": 0}]  # no webhook came
