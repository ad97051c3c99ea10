"""``POST /checkout`` is bounded per buyer: an open session for the same pack is reused, and the
database caps open orders and orders per hour, whatever runs concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.shop import Buyer, Shop, run_shop, session_id_of

PACKS = ["coins-100", "coins-500", "coins-2500", "quota-starter"]


def _sessions(shop: Shop) -> int:
    count: int = shop.sandbox.call(lambda: len(shop.sandbox.state.sessions))
    return count


def _burst(buyer: Buyer, packs: list[str]) -> list[int]:
    """One POST /checkout per pack, all at once, each from its own connection with the buyer's cookies."""
    token = buyer.csrf()

    def post(pack: str) -> int:
        with httpx.Client(
            base_url=buyer.shop.url, cookies=buyer.client.cookies, headers=buyer.client.headers, timeout=60
        ) as client:
            return client.post("/checkout", data={"pack": pack, "_csrf_token": token}).status_code

    with ThreadPoolExecutor(max_workers=len(packs)) as pool:
        return list(pool.map(post, packs))


def test_the_open_session_for_the_same_pack_is_reused(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    first = buyer.buy("coins-100")
    again = buyer.buy("coins-100")
    assert again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    assert len(shop.rows("SELECT id FROM purchase_order")) == 1
    assert _sessions(shop) == 1
    # Another pack is another order; a session Stripe has closed is not reused.
    other = buyer.start("coins-500")
    assert other != session_id_of(first.headers["location"])
    shop.sandbox.control("POST", "clock/advance", seconds=2 * 3600)
    shop.flush()
    fresh = buyer.start("coins-100")
    assert fresh != session_id_of(first.headers["location"])
    assert len(shop.rows("SELECT id FROM purchase_order")) == 3


def test_open_orders_are_capped_even_concurrently(migrated_url: str, tmp_path: Path) -> None:
    with run_shop(tmp_path, migrated_url, checkout_max_open=3, checkout_max_per_hour=100) as shop:
        buyer = shop.buyer().sign_up()
        codes = _burst(buyer, PACKS * 3)
        orders = shop.rows("SELECT status FROM purchase_order")
        assert len(orders) == 3, (codes, orders)
        assert _sessions(shop) == 3
        assert sorted(set(codes)) == [303, 429]
        page = buyer.buy("coins-1000-premium")
        assert page.status_code == 429
        assert "waiting for payment" in page.text
        zh = Buyer(shop, buyer.email, ip="10.200.0.1", locale="zh")
        zh.client.cookies = buyer.client.cookies
        assert "等待付款" in zh.buy("coins-1000-premium").text


def test_orders_per_hour_are_capped_even_concurrently(migrated_url: str, tmp_path: Path) -> None:
    with run_shop(tmp_path, migrated_url, checkout_max_open=100, checkout_max_per_hour=2) as shop:
        buyer = shop.buyer().sign_up()
        codes = _burst(buyer, PACKS * 2)
        assert len(shop.rows("SELECT id FROM purchase_order")) == 2, codes
        assert _sessions(shop) == 2
        # Canceling does not give the hour back.
        sid = shop.rows("SELECT stripe_session_id FROM purchase_order")[0]["stripe_session_id"]
        buyer.client.get(shop.session(sid)["cancel_url"].removeprefix(shop.url))
        limited = buyer.buy("coins-1000-premium")  # not among the burst's packs: nothing to reuse
        assert limited.status_code == 429
        assert 0 < int(limited.headers["retry-after"]) <= 3600
        assert "in the last hour" in limited.text
        assert len(shop.rows("SELECT id FROM purchase_order")) == 2
        # Another buyer is not affected.
        assert shop.buyer().sign_up().buy("coins-100").status_code == 303
