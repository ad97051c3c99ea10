"""200 purchases while webhook delivery misbehaves, then one reconcile: the books match Stripe.

Deliveries are duplicated, reordered, delayed and dropped (a dropped delivery is never retried
here, so only reconciliation can recover it). Afterwards every buyer's balance must equal what
the sandbox says was paid, minus what was refunded and what was lost in disputes.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import stripe

from app.sandbox import ChaosConfig
from tests.support.sandbox_server import TEST_KEY
from tests.support.shop import Shop, run_shop


def test_chaos_then_reconcile_matches_stripe(
    sqlite_url: str, sqlite_settings: object, tmp_path: Path
) -> None:
    chaos = ChaosConfig(seed=20240601, duplicate=0.2, reorder=0.3, delay=0.3, drop=0.15, max_delay=0.3)
    with run_shop(tmp_path, sqlite_url, sandbox={"chaos": chaos, "max_delivery_attempts": 1}) as shop:
        _run(shop)


def _run(shop: Shop) -> None:
    # The k-th purchase of each pack goes to the k-th buyer: a buyer asking twice for a pack whose
    # session is still open is sent back to it (and the shop caps open orders per buyer).
    buyers = [shop.buyer().sign_up() for _ in range(80)]
    packs = itertools.cycle(["coins-100", "coins-500", "quota-starter", "coins-100", "coins-500"])
    bought: dict[str, int] = defaultdict(int)
    started: list[tuple[int, str]] = []
    for n in range(200):
        pack = next(packs)
        buyer = buyers[bought[pack]]
        bought[pack] += 1
        started.append((n, buyer.start(pack)))

    sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": shop.sandbox.url})
    disputed: list[str] = []
    for n, sid in started:
        if n % 10 == 3:
            card = "4000000000000002"  # declined: nothing paid
        elif n % 20 == 7:
            card = "4000000000000259"  # paid, then disputed
        else:
            card = "4242424242424242"
        result = shop.pay(sid, card_number=card)
        if result["status"] != "succeeded":
            continue
        pi = str(result["payment_intent"])
        if card == "4000000000000259":
            disputed.append(pi)
        elif n % 9 == 0:
            sdk.v1.refunds.create({"payment_intent": pi})
        elif n % 9 == 4:
            sdk.v1.refunds.create({"payment_intent": pi, "amount": 40})
    state = shop.sandbox.state
    for i, pi in enumerate(disputed):
        dispute_id = shop.sandbox.call(
            lambda pi=pi: next(d["id"] for d in state.disputes.dump() if d["payment_intent"] == pi)
        )
        shop.sandbox.control("POST", f"disputes/{dispute_id}/close", outcome="won" if i % 2 else "lost")
    shop.flush()
    chaos_log = shop.sandbox.control("GET", "chaos")["log"]
    assert any("drop" in str(entry) for entry in chaos_log), (
        "chaos mode dropped nothing: the test proves little"
    )

    summary = shop.reconcile(older_than=0)
    assert summary.replayed, "nothing was lost, so reconciliation was not exercised"
    shop.flush()

    # What Stripe (the sandbox) says.
    sessions = shop.sandbox.call(lambda: state.sessions.dump())
    refunds = shop.sandbox.call(lambda: state.refunds.dump())
    disputes = shop.sandbox.call(lambda: state.disputes.dump())
    orders = {row["stripe_session_id"]: row for row in shop.rows("SELECT * FROM purchase_order")}
    refunded: dict[str, int] = defaultdict(int)
    for refund in refunds:
        if refund["status"] == "succeeded":
            refunded[refund["payment_intent"]] += refund["amount"]
    lost = {d["payment_intent"]: d["amount"] for d in disputes if d["status"] == "lost"}
    expected: dict[tuple[int, str], int] = defaultdict(int)
    paid = 0
    for session in sessions:
        if session["payment_status"] != "paid":
            continue
        paid += 1
        order = orders[session["id"]]
        total = int(order["units"]) + int(order["bonus"])
        amount = int(session["amount_total"])
        pi = session["payment_intent"]
        taken = total * min(refunded.get(pi, 0), amount) // amount
        taken += total * lost.get(pi, 0) // amount
        expected[(int(session["metadata"]["user_id"]), order["asset"])] += total - taken
    assert paid >= 170

    actual = {
        (row["user_id"], row["asset"]): row["available"]
        for row in shop.rows("SELECT user_id, asset, available, held FROM balance")
    }
    assert {k: v for k, v in actual.items() if v or k in expected} == dict(expected)
    assert shop.rows("SELECT user_id FROM balance WHERE held <> 0") == []
    # Every paid order is paid, every declined one is not, and the ledger has no duplicate credit.
    statuses = defaultdict(int)
    for order in orders.values():
        statuses[order["status"]] += 1
    assert statuses["paid"] == paid
    purchases = shop.rows(
        "SELECT order_id, COUNT(*) AS n FROM ledger_entry WHERE kind = 'purchase' GROUP BY order_id"
    )
    assert len(purchases) == paid
    assert all(p["n"] == 1 for p in purchases)
