"""Random interleavings of purchases, redeliveries, refunds and disputes keep the ledger exact.

Driven through the SQLite writer's path (``CompiledConnection`` + ``process_event``), one event per
transaction and SAVEPOINT (the writer's batch when it is re-run event by event); after every
step the balance must equal the sum of the entries AND the totals a simple model expects.
"""

from __future__ import annotations

import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import Connection, insert

from app.accounts.models import User
from app.db.compiled import CompiledConnection
from app.db.config import sync_sqlite_engine
from app.db.migrate import upgrade
from app.money.events import process_event
from app.money.ledger import balances, check_invariant
from app.money.models import Order
from tests.conftest import make_settings

_DB: dict[str, Any] = {}


def _database() -> str:
    """One migrated SQLite file for all examples; each example uses its own buyer."""
    if "url" not in _DB:
        tmp = Path(tempfile.mkdtemp(prefix="ledger-props-"))
        url = f"sqlite+aiosqlite:///{tmp / 'props.db'}"
        upgrade(make_settings(tmp, url))
        _DB["url"] = url
        _DB["engine"] = sync_sqlite_engine(url)
        _DB["writer"] = _DB["engine"].connect()
    return str(_DB["url"])


def _event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_" + secrets.token_hex(10), "type": event_type, "created": 1, "data": {"object": obj}}


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def buyer(self) -> None:
        _database()
        self.engine = _DB["engine"]
        self.writer: Connection = _DB["writer"]
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            self.user_id = conn.execute(
                insert(User)
                .values(
                    email=f"p-{secrets.token_hex(6)}@example.test",
                    password_hash="x",
                    created_at=now,
                    updated_at=now,
                )
                .returning(User.id)
            ).scalar_one()
        self.available = 0
        self.held = 0
        self.sent: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []  # model of each order

    # --- helpers -------------------------------------------------------------------------------

    def _new_order(self, units: int, bonus: int, amount: int) -> dict[str, Any]:
        now = datetime.now(UTC)
        session_id = "cs_test_" + secrets.token_hex(10)
        with self.engine.begin() as conn:
            order_id = conn.execute(
                insert(Order)
                .values(
                    user_id=self.user_id,
                    pack_id="p",
                    pack_name="p",
                    asset="coins",
                    units=units,
                    bonus=bonus,
                    amount=amount,
                    currency="usd",
                    locale="en",
                    status="open",
                    stripe_session_id=session_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(Order.id)
            ).scalar_one()
        order = {
            "id": order_id,
            "session": session_id,
            "pi": f"pi_{session_id}",
            "total": units + bonus,
            "amount": amount,
            "refunded": 0,
            "taken": 0,
            "paid": False,
            "disputes": {},
        }
        self.orders.append(order)
        return order

    def _send(self, event: dict[str, Any]) -> str:
        with self.writer.begin(), self.writer.begin_nested():
            outcome = process_event(CompiledConnection(self.writer), event).outcome
        self.sent.append(event)
        return outcome

    def _completed(self, order: dict[str, Any]) -> dict[str, Any]:
        session = {
            "id": order["session"],
            "object": "checkout.session",
            "amount_subtotal": order["amount"],
            "amount_total": order["amount"],
            "currency": "usd",
            "payment_status": "paid",
            "status": "complete",
            "payment_intent": order["pi"],
            "metadata": {"order_id": str(order["id"])},
        }
        return _event("checkout.session.completed", session)

    def _apply_refund_model(self, order: dict[str, Any], amount: int) -> None:
        order["refunded"] += amount
        target = order["total"] * min(order["refunded"], order["amount"]) // order["amount"]
        if order["paid"]:
            self.available -= target - order["taken"]
            order["taken"] = target

    def _refund_event(self, order: dict[str, Any], amount: int) -> dict[str, Any]:
        refund = {
            "id": "re_" + secrets.token_hex(8),
            "object": "refund",
            "amount": amount,
            "status": "succeeded",
            "payment_intent": order["pi"],
            "charge": "ch_" + order["session"],
            "currency": "usd",
        }
        return _event("refund.created", refund)

    # --- rules ---------------------------------------------------------------------------------

    @rule(units=st.integers(1, 5000), bonus=st.integers(0, 500), amount=st.integers(1, 10_000))
    def buy(self, units: int, bonus: int, amount: int) -> None:
        order = self._new_order(units, bonus, amount)
        assert self._send(self._completed(order)).startswith("credited")
        order["paid"] = True
        self.available += order["total"]

    @rule(units=st.integers(1, 5000), amount=st.integers(2, 10_000), share=st.integers(1, 100))
    def refund_before_completion(self, units: int, amount: int, share: int) -> None:
        order = self._new_order(units, 0, amount)
        part = max(1, amount * share // 100)
        assert self._send(self._refund_event(order, part)).startswith("pending")
        self._apply_refund_model(order, part)  # not paid yet: the model takes nothing
        self._send(self._completed(order))
        order["paid"] = True
        self.available += order["total"]
        target = order["total"] * order["refunded"] // order["amount"]
        self.available -= target
        order["taken"] = target

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(self.sent))
        assert self._send(event) == "duplicate"

    @precondition(lambda self: any(o["paid"] and o["refunded"] < o["amount"] for o in self.orders))
    @rule(data=st.data(), whole=st.booleans(), as_charge=st.booleans())
    def refund(self, data: st.DataObject, whole: bool, as_charge: bool) -> None:
        order = data.draw(
            st.sampled_from([o for o in self.orders if o["paid"] and o["refunded"] < o["amount"]])
        )
        left = order["amount"] - order["refunded"]
        amount = left if whole else data.draw(st.integers(1, left))
        event = self._refund_event(order, amount)
        self._send(event)
        self._apply_refund_model(order, amount)
        if as_charge:  # the same refund again, as charge.refunded with the cumulative total
            charge = {
                "id": "ch_" + order["session"],
                "object": "charge",
                "amount": order["amount"],
                "amount_refunded": order["refunded"],
                "payment_intent": order["pi"],
                "refunds": {"object": "list", "data": [event["data"]["object"]], "has_more": False},
            }
            self._send(_event("charge.refunded", charge))

    @precondition(lambda self: any(o["paid"] and not o["disputes"] for o in self.orders))
    @rule(data=st.data())
    def dispute(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from([o for o in self.orders if o["paid"] and not o["disputes"]]))
        dispute_id = "du_" + secrets.token_hex(8)
        obj = {
            "id": dispute_id,
            "object": "dispute",
            "amount": order["amount"],
            "payment_intent": order["pi"],
            "status": "needs_response",
        }
        self._send(_event("charge.dispute.created", obj))
        order["disputes"][dispute_id] = obj
        self.available -= order["total"]
        self.held += order["total"]

    @precondition(
        lambda self: any(
            d.get("status") == "needs_response" for o in self.orders for d in o["disputes"].values()
        )
    )
    @rule(data=st.data(), won=st.booleans(), reinstated_too=st.booleans())
    def close_dispute(self, data: st.DataObject, won: bool, reinstated_too: bool) -> None:
        order = data.draw(
            st.sampled_from(
                [
                    o
                    for o in self.orders
                    if any(d["status"] == "needs_response" for d in o["disputes"].values())
                ]
            )
        )
        obj = next(d for d in order["disputes"].values() if d["status"] == "needs_response")
        closed = {**obj, "status": "won" if won else "lost"}
        obj["status"] = closed["status"]
        self._send(_event("charge.dispute.closed", closed))
        if won and reinstated_too:
            self._send(_event("charge.dispute.funds_reinstated", closed))
        if won:
            self.available += order["total"]
        self.held -= order["total"]

    @invariant()
    def ledger_is_exact(self) -> None:
        if not hasattr(self, "engine"):
            return
        with self.engine.connect() as conn:
            assert check_invariant(conn) == []
            view = balances(conn, self.user_id).get("coins")
        got = (view.available, view.held) if view else (0, 0)
        assert got == (self.available, self.held)


LedgerMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLedgerProperties = LedgerMachine.TestCase
