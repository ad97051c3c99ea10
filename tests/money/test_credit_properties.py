"""Random interleavings of credits, spending, holds, expiry and Stripe's take-backs against a model.

Purchases, refunds and disputes go through ``process_event`` and the rest through
``app.money.credits``, all on the SQLite writer's path (``CompiledConnection``), one operation
per transaction (an operation that raises rolls back, as a request would). A small model, written
without the app's code, keeps the lots (remaining, expiry, kind, in spending order), the debt,
the reserved and the held units; after every step the database must agree with it lot by lot,
``check_invariant`` and ``check_credits`` must be empty, and a debit or hold must have succeeded
exactly when the model's spendable (after what had expired was swept) covered it.

The model clock starts at the real time and only moves forward: purchases date their lot's
expiry from ``time.time()`` (read back from the lot), holds, grants, debits and sweeps from
the model clock, so a purchase made after a large clock move may be born already expired.
"""

from __future__ import annotations

import copy
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import Connection, Engine, insert, select

from app.accounts.models import User
from app.db.compiled import CompiledConnection
from app.db.config import sync_sqlite_engine
from app.db.migrate import upgrade
from app.money.credits import (
    HoldClosed,
    Insufficient,
    capture_hold,
    check_credits,
    credit,
    customer_balances,
    debit,
    list_lots,
    place_hold,
    release_hold,
    sweep,
)
from app.money.events import process_event
from app.money.ledger import check_invariant
from app.money.lots import LOTS
from app.money.models import Balance, LotKind, Order
from tests.conftest import make_settings

_DB: dict[str, Any] = {}

ASSET = "coins"
FAR_FUTURE = 2**62
DAY = 86_400


def _database() -> tuple[Engine, Connection]:
    """One migrated SQLite file for all examples; each example uses its own buyer."""
    if "engine" not in _DB:
        tmp = Path(tempfile.mkdtemp(prefix="credit-props-"))
        url = f"sqlite+aiosqlite:///{tmp / 'props.db'}"
        upgrade(make_settings(tmp, url))
        _DB["engine"] = sync_sqlite_engine(url)
        _DB["writer"] = _DB["engine"].connect()
    return _DB["engine"], _DB["writer"]


def _event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_" + secrets.token_hex(10), "type": event_type, "created": 1, "data": {"object": obj}}


# --- the model -------------------------------------------------------------------------------


@dataclass
class MLot:
    id: int
    kind: str
    remaining: int
    expires_at: int | None

    def spend_key(self) -> tuple[bool, int, int, int]:
        """Soonest-expiring first (never-expiring last), then promotional, then oldest."""
        return (
            self.expires_at is None,
            self.expires_at or 0,
            0 if self.kind == LotKind.PROMOTIONAL else 1,
            self.id,
        )


@dataclass
class MHold:
    id: str
    units: int
    expires_at: int
    taken: list[tuple[int, int]]
    seq: int
    status: str = "open"
    captured: int = 0


@dataclass
class MOrder:
    id: int
    session: str
    pi: str
    total: int
    amount: int
    lot: int | None = None
    refunded: int = 0
    taken: int = 0
    dispute: dict[str, Any] | None = None


@dataclass
class Model:
    lots: dict[int, MLot] = field(default_factory=dict)
    holds: dict[str, MHold] = field(default_factory=dict)
    debt: int = 0
    held: int = 0

    @property
    def lot_units(self) -> int:
        return sum(lot.remaining for lot in self.lots.values())

    @property
    def available(self) -> int:
        """Net balance: what the lots hold less the debt (negative while in debt)."""
        return self.lot_units - self.debt

    @property
    def reserved(self) -> int:
        return sum(h.units for h in self.holds.values() if h.status == "open")

    def take(self, units: int, first: int | None = None) -> tuple[list[tuple[int, int]], int]:
        """Take up to ``units`` in spending order (``first`` before all); (moves, shortfall)."""
        order = sorted((lot for lot in self.lots.values() if lot.remaining > 0), key=MLot.spend_key)
        if first is not None:
            order.sort(key=lambda lot: lot.id != first)
        moves: list[tuple[int, int]] = []
        left = units
        for lot in order:
            if left == 0:
                break
            part = min(lot.remaining, left)
            lot.remaining -= part
            moves.append((lot.id, part))
            left -= part
        return moves, left

    def give_back(self, taken: list[tuple[int, int]], units: int, overflow: int | None = None) -> None:
        """Return ``units`` to the lots they were taken from, the last-taken first."""
        left = units
        for lot_id, part in reversed(taken):
            if left == 0:
                break
            give = min(part, left)
            self.lots[lot_id].remaining += give
            left -= give
        if left:
            assert overflow is not None, "model: units to give back and no lot for them"
            self.lots[overflow].remaining += left

    def pay_debt(self, units: int) -> int:
        paid = min(self.debt, units)
        self.debt -= paid
        return paid

    def credit(self, lot: MLot, units: int) -> None:
        lot.remaining = units - self.pay_debt(units)
        self.lots[lot.id] = lot

    def close(self, hold: MHold, status: str, captured: int) -> None:
        hold.status, hold.captured = status, captured
        rest = hold.units - captured
        self.give_back(hold.taken, rest - self.pay_debt(rest))

    def sweep(self, now: int) -> None:
        """Expired holds go back, then expired lots are emptied.

        Holds go back the earliest-expiring (then oldest) first: with debt, the first pays it.
        The app's query has no ORDER BY; SQLite serves it from ``ix_credit_hold_status_expires``
        in this order, so the lots compared after every step agree.
        """
        for hold in sorted(self.holds.values(), key=lambda h: (h.expires_at, h.seq)):
            if hold.status == "open" and hold.expires_at <= now:
                self.close(hold, "expired", 0)
        for lot in self.lots.values():
            if lot.expires_at is not None and lot.expires_at <= now:
                lot.remaining = 0

    def spend(self, units: int, now: int) -> list[tuple[int, int]] | None:
        """A debit or hold: sweep, then take ``units`` if the net balance covers them, else None."""
        before = copy.deepcopy((self.lots, self.holds, self.debt))
        self.sweep(now)
        if self.available < units:
            self.lots, self.holds, self.debt = before  # refused: the transaction rolls back
            return None
        moves, short = self.take(units)
        assert short == 0, "model: available covered it, the lots must"
        return moves


# --- the machine -----------------------------------------------------------------------------


class CreditMachine(RuleBasedStateMachine):
    @initialize()
    def buyer(self) -> None:
        self.engine, self.writer = _database()
        self.now = int(time.time())
        moment = datetime.now(UTC)
        with self.engine.begin() as conn:
            self.user_id = int(
                conn.execute(
                    insert(User)
                    .values(
                        email=f"c-{secrets.token_hex(6)}@example.test",
                        password_hash="x",
                        created_at=moment,
                        updated_at=moment,
                    )
                    .returning(User.id)
                ).scalar_one()
            )
        self.model = Model()
        self.orders: list[MOrder] = []
        self.seq = 0
        self.debit_keys: list[str] = []
        self.sent: list[dict[str, Any]] = []

    def teardown(self) -> None:
        # Expire everything of this buyer, so later examples' sweeps never meet their balances.
        if hasattr(self, "user_id"):
            with self.writer.begin():
                sweep(CompiledConnection(self.writer), now=FAR_FUTURE)

    # --- helpers ---------------------------------------------------------------------------

    def _send(self, event: dict[str, Any]) -> str:
        with self.writer.begin():
            outcome = process_event(CompiledConnection(self.writer), event).outcome
        self.sent.append(event)
        return outcome

    def _lot_of(self, *, order_id: int | None = None, entry_id: int | None = None) -> tuple[int, int | None]:
        where = LOTS.c.order_id == order_id if order_id is not None else LOTS.c.entry_id == entry_id
        with self.engine.connect() as conn:
            lot_id, expires_at = conn.execute(select(LOTS.c.id, LOTS.c.expires_at).where(where)).one()
        return int(lot_id), expires_at

    def _new_order(self, units: int, bonus: int, amount: int, days: int | None) -> MOrder:
        moment = datetime.now(UTC)
        session_id = "cs_test_" + secrets.token_hex(10)
        with self.engine.begin() as conn:
            order_id = conn.execute(
                insert(Order)
                .values(
                    user_id=self.user_id,
                    pack_id="p",
                    pack_name="p",
                    asset=ASSET,
                    units=units,
                    bonus=bonus,
                    amount=amount,
                    currency="usd",
                    locale="en",
                    status="open",
                    stripe_session_id=session_id,
                    credit_expires_days=days,
                    created_at=moment,
                    updated_at=moment,
                )
                .returning(Order.id)
            ).scalar_one()
        order = MOrder(int(order_id), session_id, f"pi_{session_id}", units + bonus, amount)
        self.orders.append(order)
        return order

    def _hold_units(self, order: MOrder, amount: int) -> int:
        return order.total * min(amount, order.amount) // order.amount

    def _open_holds(self) -> list[MHold]:
        return [h for h in self.model.holds.values() if h.status == "open"]

    # --- credits ---------------------------------------------------------------------------

    @rule(
        units=st.integers(1, 300),
        bonus=st.integers(0, 30),
        amount=st.integers(1, 5000),
        days=st.one_of(st.none(), st.integers(1, 3)),
    )
    def buy(self, units: int, bonus: int, amount: int, days: int | None) -> None:
        order = self._new_order(units, bonus, amount, days)
        session = {
            "id": order.session,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "currency": "usd",
            "payment_status": "paid",
            "status": "complete",
            "payment_intent": order.pi,
            "metadata": {"order_id": str(order.id)},
        }
        before = int(time.time())
        assert self._send(_event("checkout.session.completed", session)).startswith("credited")
        after = int(time.time())
        lot_id, expires_at = self._lot_of(order_id=order.id)
        if days is None:
            assert expires_at is None
        else:
            assert expires_at is not None
            assert before + days * DAY <= expires_at <= after + days * DAY
        order.lot = lot_id
        self.model.credit(MLot(lot_id, LotKind.PAID.value, 0, expires_at), order.total)

    @rule(units=st.integers(1, 300), expires_in=st.one_of(st.none(), st.integers(1, 3 * DAY)))
    def grant(self, units: int, expires_in: int | None) -> None:
        expires_at = None if expires_in is None else self.now + expires_in
        with self.writer.begin():
            entry = credit(
                CompiledConnection(self.writer),
                user_id=self.user_id,
                asset=ASSET,
                units=units,
                kind="grant",
                lot_kind=LotKind.PROMOTIONAL,
                key="grant:" + secrets.token_hex(8),
                expires_at=expires_at,
            )
        assert entry is not None
        lot_id, stored = self._lot_of(entry_id=entry.id)
        assert stored == expires_at
        self.model.credit(MLot(lot_id, LotKind.PROMOTIONAL.value, 0, expires_at), units)

    # --- spending --------------------------------------------------------------------------

    @rule(units=st.integers(1, 400))
    def spend(self, units: int) -> None:
        expected = self.model.spend(units, self.now)
        key = "debit:" + secrets.token_hex(8)
        try:
            with self.writer.begin():
                done = debit(
                    CompiledConnection(self.writer),
                    user_id=self.user_id,
                    asset=ASSET,
                    units=units,
                    key=key,
                    now=self.now,
                )
        except Insufficient as error:
            refused = error
        else:
            refused = None
        if refused is not None:
            assert expected is None, f"debit of {units} refused, the model had it covered"
            assert refused.spendable == self._swept_spendable()
            return
        assert expected is not None, f"debit of {units} succeeded, the model says it overdraws"
        assert done is not None
        self.debit_keys.append(key)
        assert sorted(done.lots) == sorted(expected)
        assert done.available == max(self.model.available, 0)

    @precondition(lambda self: bool(self.debit_keys))
    @rule(data=st.data(), units=st.integers(1, 400))
    def spend_again(self, data: st.DataObject, units: int) -> None:
        """A ledger key used before spends nothing, covered or not."""
        key = data.draw(st.sampled_from(self.debit_keys))
        with self.writer.begin():
            again = debit(
                CompiledConnection(self.writer),
                user_id=self.user_id,
                asset=ASSET,
                units=units,
                key=key,
                now=self.now,
            )
        assert again is None

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        assert self._send(data.draw(st.sampled_from(self.sent))) == "duplicate"

    def _swept_spendable(self) -> int:
        """What a refused spender saw: the spendable once expiries are swept (then rolled back)."""
        trial = copy.deepcopy(self.model)
        trial.sweep(self.now)
        return max(trial.available, 0)

    @rule(units=st.integers(1, 400), lasts=st.integers(1, 2 * DAY))
    def hold(self, units: int, lasts: int) -> None:
        expected = self.model.spend(units, self.now)
        try:
            with self.writer.begin():
                placed = place_hold(
                    CompiledConnection(self.writer),
                    user_id=self.user_id,
                    asset=ASSET,
                    units=units,
                    expires_at=self.now + lasts,
                    key="hold:" + secrets.token_hex(8),
                    now=self.now,
                )
        except Insufficient as error:
            refused = error
        else:
            refused = None
        if refused is not None:
            assert expected is None, f"hold of {units} refused, the model had it covered"
            assert refused.spendable == self._swept_spendable()
            return
        assert expected is not None, f"hold of {units} placed, the model says it overdraws"
        assert placed is not None
        self.seq += 1
        self.model.holds[placed.id] = MHold(placed.id, units, self.now + lasts, expected, self.seq)

    def _end(self, hold: MHold, captured: int | None) -> None:
        """Capture ``captured`` units of the hold, or release it (None)."""
        status_if_open = "captured" if captured is not None else "released"
        was = hold.status
        try:
            with self.writer.begin():
                conn = CompiledConnection(self.writer)
                if captured is None:
                    row = release_hold(conn, hold.id, now=self.now)
                else:
                    row = capture_hold(conn, hold.id, captured, now=self.now)
        except HoldClosed as error:
            closed = error
        else:
            closed = None
        if closed is not None:
            assert was != "open", f"hold {hold.id} is open in the model"
            assert closed.status == was
            return
        assert was == "open", f"closing a {was} hold did not raise HoldClosed"
        if hold.expires_at <= self.now:
            self.model.sweep(self.now)
            assert (row.status, row.captured) == ("expired", 0)
            return
        self.model.close(hold, status_if_open, captured or 0)
        self.model.sweep(self.now)
        assert (row.status, row.captured) == (status_if_open, captured or 0)

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data(), whole=st.booleans())
    def capture(self, data: st.DataObject, whole: bool) -> None:
        hold = data.draw(st.sampled_from(sorted(self.model.holds.values(), key=lambda h: h.seq)))
        self._end(hold, hold.units if whole else data.draw(st.integers(0, hold.units)))

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold = data.draw(st.sampled_from(sorted(self.model.holds.values(), key=lambda h: h.seq)))
        self._end(hold, None)

    # --- time ------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 59, 600, 3600, DAY - 1, DAY, 2 * DAY + 7]))
    def tick(self, seconds: int) -> None:
        self.now += seconds

    @rule()
    def sweep_job(self) -> None:
        with self.writer.begin():
            swept = sweep(CompiledConnection(self.writer), now=self.now)
        assert swept in (0, 1)
        self.model.sweep(self.now)

    # --- refunds and disputes --------------------------------------------------------------

    @precondition(lambda self: any(o.refunded < o.amount for o in self.orders))
    @rule(data=st.data(), whole=st.booleans())
    def refund(self, data: st.DataObject, whole: bool) -> None:
        order = data.draw(st.sampled_from([o for o in self.orders if o.refunded < o.amount]))
        left = order.amount - order.refunded
        amount = left if whole else data.draw(st.integers(1, left))
        refund = {
            "id": "re_" + secrets.token_hex(8),
            "object": "refund",
            "amount": amount,
            "status": "succeeded",
            "payment_intent": order.pi,
            "charge": "ch_" + order.session,
            "currency": "usd",
        }
        assert self._send(_event("refund.created", refund)).startswith("refund applied")
        order.refunded += amount
        target = order.total * order.refunded // order.amount
        units, order.taken = target - order.taken, target
        _, short = self.model.take(units, first=order.lot)
        self.model.debt += short

    @precondition(lambda self: any(o.dispute is None for o in self.orders))
    @rule(data=st.data(), whole=st.booleans())
    def dispute(self, data: st.DataObject, whole: bool) -> None:
        order = data.draw(st.sampled_from([o for o in self.orders if o.dispute is None]))
        amount = order.amount if whole else data.draw(st.integers(1, order.amount))
        obj = {
            "id": "du_" + secrets.token_hex(8),
            "object": "dispute",
            "amount": amount,
            "payment_intent": order.pi,
            "reason": "fraudulent",
            "status": "needs_response",
        }
        assert self._send(_event("charge.dispute.created", obj)).startswith("dispute held")
        units = self._hold_units(order, amount)
        taken, short = self.model.take(units, first=order.lot)
        self.model.debt += short
        self.model.held += units
        order.dispute = {"obj": obj, "units": units, "taken": taken, "open": True}

    @precondition(lambda self: any(o.dispute is not None and o.dispute["open"] for o in self.orders))
    @rule(data=st.data(), won=st.booleans())
    def close_dispute(self, data: st.DataObject, won: bool) -> None:
        order = data.draw(
            st.sampled_from([o for o in self.orders if o.dispute is not None and o.dispute["open"]])
        )
        assert order.dispute is not None
        self._close_dispute(order, won)

    def _close_dispute(self, order: MOrder, won: bool) -> None:
        dispute = order.dispute
        assert dispute is not None
        closed = {**dispute["obj"], "status": "won" if won else "lost"}
        outcome = self._send(_event("charge.dispute.closed", closed))
        assert outcome.startswith("dispute released" if won else "dispute lost"), outcome
        dispute["open"] = False
        units = dispute["units"]
        self.model.held -= units
        if won:
            self.model.give_back(dispute["taken"], units - self.model.pay_debt(units), overflow=order.lot)

    # --- after every step ------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        model = self.model
        with self.engine.connect() as conn:
            assert check_invariant(conn) == []
            assert check_credits(conn) == []
            view = customer_balances(conn, self.user_id, now=self.now).get(ASSET)
            lots = {lot.id: lot.remaining for lot in list_lots(conn, self.user_id, limit=500)}
            next_expiry = conn.execute(
                select(Balance.next_expiry).where(Balance.user_id == self.user_id, Balance.asset == ASSET)
            ).scalar()
        assert lots == {lot.id: lot.remaining for lot in model.lots.values()}
        got = (0, 0, 0, 0) if view is None else (view.available, view.reserved, view.held, view.debt)
        # The balances are read as the next sweep will leave them (what a debit now would find).
        swept = copy.deepcopy(model)
        swept.sweep(self.now)
        assert got == (max(swept.available, 0), swept.reserved, swept.held, swept.debt), (got, self.now)
        assert got[0] >= 0
        assert model.debt >= 0
        assert model.reserved >= 0
        assert model.debt == 0 or model.lot_units == 0, "debt while lots hold units"
        expiring = [lot for lot in model.lots.values() if lot.remaining and lot.expires_at is not None]
        if view is not None:
            ahead = [lot for lot in swept.lots.values() if lot.remaining and (lot.expires_at or 0) > self.now]
            soonest = min((lot.expires_at or 0 for lot in ahead), default=None)
            units = sum(lot.remaining for lot in ahead if lot.expires_at == soonest)
            assert (view.next_expiry_at, view.next_expiry_units) == (soonest, units)
        # The spending UPDATE trusts ``next_expiry`` to be no later than anything that can expire:
        # later, and units past their expiry would be spent without being swept first.
        dues = [lot.expires_at or 0 for lot in expiring] + [h.expires_at for h in self._open_holds()]
        if dues:
            assert next_expiry is not None, f"balance.next_expiry is None, {min(dues)} is due"
            assert next_expiry <= min(dues), (
                f"balance.next_expiry {next_expiry} is later than the soonest expiry {min(dues)}"
            )


CreditMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestCreditProperties = CreditMachine.TestCase


class _Draws:
    """Stands in for ``st.data()`` when a test replays chosen steps of the machine."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)

    def draw(self, _strategy: Any) -> Any:
        return self.values.pop(0)


def test_units_a_won_dispute_gives_back_to_an_expired_lot_are_not_spendable() -> None:
    machine = CreditMachine()
    machine.buyer()
    try:
        machine.buy(units=10, bonus=0, amount=100, days=1)  # lot L expires in a day
        order = machine.orders[0]
        machine.dispute(_Draws(order), whole=True)  # takes all 10 units out of L
        machine.tick(2 * DAY + 7)  # L's expiry passes while it is empty
        machine.sweep_job()  # nothing left to expire: next_expiry is recomputed to None
        machine.agrees_with_the_model()
        machine._close_dispute(order, won=True)  # 10 units back into the expired lot L
        # Fails here: balance.next_expiry is None, no longer covering L's expiry, so...
        machine.agrees_with_the_model()
        # ...this debit spends L's expired units instead of being refused (and sweep skips them).
        machine.spend(units=10)
        machine.agrees_with_the_model()
    finally:
        machine.teardown()


def test_customer_balances_counts_no_expired_units_as_available() -> None:
    machine = CreditMachine()
    machine.buyer()
    try:
        machine.grant(units=10, expires_in=10)
        machine.grant(units=3, expires_in=None)
        machine.tick(59)  # the 10 have expired; no sweep has run yet
        with machine.engine.connect() as conn:
            view = customer_balances(conn, machine.user_id, now=machine.now)[ASSET]
        machine.spend(units=4)  # refused: only 3 are spendable now
        assert view.available == 3, f"available {view.available} at {machine.now}, a debit finds 3"
    finally:
        machine.teardown()
