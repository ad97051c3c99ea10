"""The ledger's CSV export with its hash chain, and its verification, on both databases."""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.config import make_engine
from app.db.sql import run
from app.ledger_export.service import GENESIS, HEADER, export_csv, verify
from app.money.credits import credit, debit
from app.money.models import LedgerEntry, LotKind
from app.settings import Settings
from tests.webhooks.factories import make_user

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]
T0 = 1_800_000_000


AWKWARD = 'promo, "quoted"\nline {n} 金币'


async def _entries(sessions: Sessions, count: int, reason: str = AWKWARD) -> list[int]:
    """``count`` committed entries (grants with awkward reasons, then debits); their ids."""
    ids = []
    async with sessions() as db, db.begin():
        user = await make_user(db)
        for n in range(count):
            if n % 2 == 0:
                entry = await run(
                    db,
                    credit,
                    user_id=user.id,
                    asset="coins",
                    units=10 + n,
                    kind="grant",
                    lot_kind=LotKind.PROMOTIONAL,
                    key=f"g:{secrets.token_hex(6)}",
                    reason=reason.format(n=n),
                )
                assert entry is not None
                ids.append(entry.id)
            else:
                spent = await run(
                    db, debit, user_id=user.id, asset="coins", units=3, key=f"d:{n}:{user.id}", now=T0
                )
                assert spent is not None
                ids.append(spent.entry_id)
    return ids


def _written(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


async def _export(settings: Settings, since: datetime | None = None) -> str:
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            return "".join([chunk async for chunk in export_csv(conn, since=since)])
    finally:
        await engine.dispose()


async def test_an_export_verifies_and_a_changed_row_is_found_and_named(
    sessions: Sessions, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.ledger_export.service.BATCH", 3)  # several partitions of the stream
    ids = await _entries(sessions, 8)
    text = await _export(settings)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == HEADER
    assert [int(row[0]) for row in rows[1:]] == ids
    assert rows[1][14].startswith('promo, "quoted"\nline 0')  # quoting and newlines survive
    verdict = verify(io.StringIO(text, newline=""))
    assert verdict.intact, verdict
    assert verdict.rows == 8
    assert verdict.last_hash == rows[-1][-1] != GENESIS

    # One unit more in the fifth row: found there, named by its entry id; the four before are fine.
    changed = [list(row) for row in rows]
    changed[5][5] = str(int(changed[5][5]) + 1)
    bad = verify(io.StringIO(_written(changed), newline=""))
    assert not bad.intact
    assert (bad.row, bad.entry_id, bad.rows) == (5, str(ids[4]), 4)

    # A removed row breaks the chain at the row that took its place; a foreign header is refused.
    dropped = verify(io.StringIO(_written(rows[:3] + rows[4:]), newline=""))
    assert (dropped.row, dropped.entry_id) == (3, str(ids[3]))
    assert verify(io.StringIO("id,kind\r\n1,grant\r\n")).row == 0


async def test_since_exports_only_later_entries_with_a_chain_of_their_own(
    sessions: Sessions, settings: Settings
) -> None:
    ids = await _entries(sessions, 3)
    async with sessions() as db, db.begin():
        await db.execute(
            update(LedgerEntry)
            .where(LedgerEntry.id == ids[0])
            .values(created_at=datetime.now(UTC) - timedelta(days=3))
        )
    text = await _export(settings, since=datetime.now(UTC) - timedelta(days=1))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [int(row[0]) for row in rows[1:]] == ids[1:]
    assert verify(io.StringIO(text, newline="")).intact


async def test_a_reason_a_spreadsheet_would_run_is_defused_and_numbers_stay_numbers(
    sessions: Sessions, settings: Settings
) -> None:
    """A host application's reason lands in the file: it must not open as a formula."""
    await _entries(sessions, 2, reason='=HYPERLINK("http://evil.example","click{n}")')
    text = await _export(settings)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1][HEADER.index("reason")] == '\'=HYPERLINK("http://evil.example","click0")'
    assert rows[2][HEADER.index("units")] == "-3"
    assert verify(io.StringIO(text, newline="")).intact


async def test_rows_cut_off_or_appended_are_found_only_against_the_exports_last_hash(
    sessions: Sessions, settings: Settings
) -> None:
    """The chain is plain SHA-256: a shorter file, or one with rows added and hashed, still chains."""
    await _entries(sessions, 4)
    text = await _export(settings)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    last = rows[-1][-1]
    assert verify(io.StringIO(text, newline=""), last).intact

    cut = _written(rows[:-1])
    assert verify(io.StringIO(cut, newline="")).intact  # what the chain alone cannot see
    short = verify(io.StringIO(cut, newline=""), last)
    assert not short.intact
    assert (short.rows, short.row) == (3, 4)

    forged = [*rows[-1][:-1]]
    forged[0] = str(int(forged[0]) + 1)
    forged.append(hashlib.sha256((last + _written([forged]).rstrip("\r\n")).encode()).hexdigest())
    longer = _written([*rows, forged])
    assert verify(io.StringIO(longer, newline="")).intact
    assert not verify(io.StringIO(longer, newline=""), last).intact
