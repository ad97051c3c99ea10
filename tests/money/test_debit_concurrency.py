"""Concurrent debits, holds, captures and expiry on both databases: never overdrawn, never lost.

On SQLite the racers are many async tasks of this process (``app.db.sql.run`` on their own
sessions); on PostgreSQL the spending races run in two OS processes (``tests.money.spenders``),
each with its own engine and pool, started together, and the rest as tasks on a pool.
After each race the ledger must still add up (``check_invariant``, ``check_credits``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.util import await_only

from app.db.sql import run
from app.money.credits import (
    Debited,
    HoldClosed,
    Insufficient,
    capture_hold,
    check_credits,
    credit,
    customer_balances,
    debit,
    place_hold,
    release_hold,
    sweep,
)
from app.money.ledger import check_invariant
from app.money.models import LedgerEntry, LotKind
from app.settings import PROJECT_ROOT
from tests.money.spenders import spend_all
from tests.webhooks.factories import make_user

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]
T0 = 1_800_000_000
ASSET = "coins"
RACERS = 100


async def _buyer(sessions: Sessions, *lots: tuple[int, LotKind, int | None]) -> int:
    """A buyer with one lot per (units, kind, expires_at), committed."""
    async with sessions() as db, db.begin():
        user = await make_user(db)
        for units, kind, expires_at in lots:
            entry = await run(
                db,
                credit,
                user_id=user.id,
                asset=ASSET,
                units=units,
                kind="grant",
                lot_kind=kind,
                key="grant:" + secrets.token_hex(8),
                expires_at=expires_at,
            )
            assert entry is not None
        return user.id


async def _checked(sessions: Sessions, user_id: int) -> tuple[int, int, int]:
    """(spendable, reserved, debt) once the ledger is known to add up; never negative."""
    async with sessions() as db, db.begin():
        assert await run(db, check_invariant) == []
        assert await run(db, check_credits) == []
        view = (await run(db, customer_balances, user_id))[ASSET]
        # Every entry's balance after it: the balance never went below zero on the way.
        lowest = await db.scalar(
            select(func.min(LedgerEntry.balance_after)).where(LedgerEntry.user_id == user_id)
        )
    assert lowest is not None
    assert lowest >= 0
    assert view.available >= 0
    assert view.debt == 0
    return view.available, view.reserved, view.debt


def _is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


class Spenders:
    """Two spender processes (``tests.money.spenders``), started on first use, kept for the module."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> list[subprocess.Popen[str]]:
        if not self.procs:
            self.procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "tests.money.spenders"],
                    cwd=PROJECT_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
        return self.procs

    def race(self, url: str, job: dict[str, Any]) -> list[str]:
        """Half the spends in each process, released together once both are connected."""
        procs = self.start()
        try:
            for part, proc in enumerate(procs):
                own = {**job, "url": url, "count": job["count"] // 2 + (job["count"] % 2 if part else 0)}
                if not job.get("same_key"):
                    own["key"] = f"{job['key']}:p{part}"
                self._say(proc, json.dumps(own))
            for proc in procs:
                assert self._hear(proc) == "ready"
            for proc in procs:
                self._say(proc, "go")
            reports = [json.loads(self._hear(proc)) for proc in procs]
        except BaseException:
            self.stop()  # a process in an unknown state serves no further race
            raise
        # The two processes really spent at the same time: their spending windows overlap.
        assert max(r["started"] for r in reports) < min(r["ended"] for r in reports), reports
        return [outcome for report in reports for outcome in report["outcomes"]]

    @staticmethod
    def _say(proc: subprocess.Popen[str], line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    @staticmethod
    def _hear(proc: subprocess.Popen[str]) -> str:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"spender process ended (exit code {proc.poll()})"
        return line.strip()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


@pytest.fixture(scope="module")
def spenders() -> Iterator[Spenders]:
    processes = Spenders()
    try:
        yield processes
    finally:
        processes.stop()


async def _race(url: str, sessions: Sessions, spenders: Spenders, job: dict[str, Any]) -> Counter[str]:
    """Run ``job['count']`` spends at once: tasks here (SQLite), or split over two processes."""
    job = {"asset": ASSET, "key": "race:" + secrets.token_hex(6), **job}
    if not _is_postgres(url):
        return Counter(await spend_all(sessions, job))
    return Counter(await asyncio.to_thread(spenders.race, url, job))


async def _entries(sessions: Sessions, user_id: int, kind: str) -> list[int]:
    async with sessions() as db:
        rows = await db.scalars(
            select(LedgerEntry.units).where(LedgerEntry.user_id == user_id, LedgerEntry.kind == kind)
        )
        return list(rows)


@pytest.mark.parametrize(("units", "covered"), [(1, 10), (7, 10)])
async def test_concurrent_debits_spend_exactly_the_balance(
    migrated_url: str, sessions: Sessions, spenders: Spenders, units: int, covered: int
) -> None:
    user_id = await _buyer(sessions, (units * covered, LotKind.PAID, None))
    outcomes = await _race(
        migrated_url,
        sessions,
        spenders,
        {"op": "debit", "user_id": user_id, "units": units, "now": T0, "count": RACERS},
    )
    assert outcomes == Counter({"ok": covered, "insufficient": RACERS - covered})
    assert await _checked(sessions, user_id) == (0, 0, 0)
    assert await _entries(sessions, user_id, "debit") == [-units] * covered


async def test_concurrent_holds_reserve_exactly_the_balance(
    migrated_url: str, sessions: Sessions, spenders: Spenders
) -> None:
    user_id = await _buyer(sessions, (30, LotKind.PROMOTIONAL, None), (20, LotKind.PAID, None))
    outcomes = await _race(
        migrated_url,
        sessions,
        spenders,
        {"op": "hold", "user_id": user_id, "units": 5, "now": T0, "count": RACERS},
    )
    assert outcomes == Counter({"ok": 10, "insufficient": RACERS - 10})
    assert await _checked(sessions, user_id) == (0, 50, 0)


@pytest.mark.parametrize("balance", [100, 5])
async def test_one_ledger_key_spends_once_however_many_race_with_it(
    migrated_url: str, sessions: Sessions, spenders: Spenders, balance: int
) -> None:
    """20 debits with the same key: one entry; the others answer None (done), never Insufficient."""
    user_id = await _buyer(sessions, (balance, LotKind.PAID, None))
    job = {"op": "debit", "user_id": user_id, "units": 5, "now": T0, "count": 20, "same_key": True}
    outcomes = await _race(migrated_url, sessions, spenders, job)
    assert outcomes == Counter({"ok": 1, "none": 19})
    assert await _checked(sessions, user_id) == (balance - 5, 0, 0)
    assert await _entries(sessions, user_id, "debit") == [-5]


async def _attempt(sessions: Sessions, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One operation in its own transaction; its result, or the exception it raised."""
    try:
        async with sessions() as db, db.begin():
            return await run(db, operation, *args, **kwargs)
    except (HoldClosed, Insufficient) as error:
        return error


async def _together(*calls: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*calls))


async def test_a_capture_racing_a_release_of_one_hold_only_one_wins(sessions: Sessions) -> None:
    user_id = await _buyer(sessions, (200, LotKind.PAID, None))
    holds = []
    for n in range(20):
        async with sessions() as db, db.begin():
            hold = await run(
                db,
                place_hold,
                user_id=user_id,
                asset=ASSET,
                units=10,
                expires_at=T0 + 600,
                key=f"h{n}",
                now=T0,
            )
        holds.append(hold)
    assert await _checked(sessions, user_id) == (0, 200, 0)
    results = await _together(
        *(
            call
            for hold in holds
            for call in (
                _attempt(sessions, capture_hold, hold.id, 3, now=T0 + 1),
                _attempt(sessions, release_hold, hold.id, now=T0 + 1),
            )
        )
    )
    spent = 0
    for captured, released in zip(results[::2], results[1::2], strict=True):
        losers = [r for r in (captured, released) if isinstance(r, HoldClosed)]
        assert len(losers) == 1, (captured, released)
        winner = released if losers[0] is captured else captured
        assert losers[0].status == winner.status
        if winner.status == "captured":
            assert winner.captured == 3
            spent += 3
        else:
            assert winner.status == "released"
    assert await _checked(sessions, user_id) == (200 - spent, 0, 0)
    assert -sum(await _entries(sessions, user_id, "hold")) == 200
    assert sum(await _entries(sessions, user_id, "capture")) + sum(
        await _entries(sessions, user_id, "release")
    ) == (200 - spent)


@pytest.mark.parametrize("debits_at", [T0 - 1, T0])
async def test_debits_racing_the_expiry_of_their_lot(
    migrated_url: str, sessions: Sessions, debits_at: int
) -> None:
    """A lot of 10 expiring at T0 and 5 that never expire; 20 debits of 1 race three sweeps at T0.

    Debits dated before T0 may spend the expiring lot (what is left of it expires); debits
    dated T0 must never spend it. Either way the ledger adds up and no unit is lost or made.
    """
    user_id = await _buyer(sessions, (10, LotKind.PROMOTIONAL, T0), (5, LotKind.PAID, None))
    calls = [
        _attempt(sessions, debit, user_id=user_id, asset=ASSET, units=1, key=f"d{n}", now=debits_at)
        for n in range(20)
    ]
    calls[5:5] = [_attempt(sessions, sweep, now=T0) for _ in range(3)]
    results = [r for r in await _together(*calls) if not isinstance(r, int)]  # the sweeps' counts out
    ok = sum(1 for r in results if isinstance(r, Debited))
    refused = sum(1 for r in results if isinstance(r, Insufficient))
    assert (len(results), ok + refused) == (20, 20)
    expired = -sum(await _entries(sessions, user_id, "expiry"))
    spendable, reserved, _ = await _checked(sessions, user_id)
    assert reserved == 0
    assert ok + expired + spendable == 15
    if debits_at >= T0:
        assert expired == 10  # dated at its expiry, the expiring lot is never spent
        assert ok <= 5
    # 20 debits for 15 units: some were refused, so nothing may be left.
    assert (ok, spendable) == (15 - expired, 0)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_debit_meeting_a_committed_sweep_spends_what_is_left(sessions: Sessions) -> None:
    """The interleaving the race above hits, made exact: the debit's conditional UPDATE is refused
    (an expiry is due), then a sweep in another transaction commits before the debit sweeps."""
    user_id = await _buyer(sessions, (10, LotKind.PROMOTIONAL, T0), (5, LotKind.PAID, None))
    engine = sessions.kw["bind"].sync_engine
    swept: list[int] = []

    async def sweep_elsewhere() -> None:
        async with sessions() as other, other.begin():
            swept.append(await run(other, sweep, now=T0))

    def between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The refused spender's next statement looks its ledger key up: the sweep commits first.
        if not swept and "FROM ledger_entry" in statement and "idempotency_key" in statement:
            await_only(sweep_elsewhere())

    event.listen(engine, "before_cursor_execute", between)
    try:
        result = await _attempt(sessions, debit, user_id=user_id, asset=ASSET, units=1, key="d", now=T0)
    finally:
        event.remove(engine, "before_cursor_execute", between)
    assert swept == [1]  # the interleaving happened
    assert isinstance(result, Debited), f"refused: {result!r}"
    assert await _checked(sessions, user_id) == (4, 0, 0)
