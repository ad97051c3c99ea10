"""Export every ledger entry as CSV whose rows are chained by SHA-256, and verify such a file.

Each row ends with ``hash = sha256(previous hash + row)``, where ``row`` is the row's CSV text
before its last comma (the data cells exactly as written) and the first row's previous hash
is :data:`GENESIS`. Changing, removing or reordering any row changes every hash from there on,
so :func:`verify` names the first row that differs. Anyone can check a file without this code:
split each record at its last comma and hash. That is also the chain's limit: it is not keyed,
so rows cut off the end, or rows appended (or a whole file rewritten) with recomputed hashes,
are found only against the last hash the export printed, kept apart from the file
(``storefront ledger verify FILE --last-hash H``). Text cells a spreadsheet would run as a
formula are written with a leading ``'`` (``app.web.spreadsheet``); the hash covers the cell as
written. The export is one streamed SELECT (one snapshot, constant memory), so entries
committed meanwhile are either wholly in or wholly out.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.money.ledger import ENTRIES
from app.web.spreadsheet import cell

__all__ = ("COLUMNS", "GENESIS", "Tally", "Verdict", "export_csv", "verify")

GENESIS: Final = "0" * 64
"""The previous hash of the first row."""

COLUMNS: Final = (
    "id",
    "created_at",
    "user_id",
    "asset",
    "kind",
    "units",
    "held_units",
    "reserved_units",
    "debt_units",
    "balance_after",
    "held_after",
    "order_id",
    "amount",
    "idempotency_key",
    "reason",
    "details",
)
HEADER: Final = (*COLUMNS, "hash")
BATCH: Final = 1000
"""Rows fetched (and yielded as one chunk) at a time."""


def _csv_text(cells: Sequence[str]) -> str:
    """The cells as one CSV record without its line end (the same writer for export and verify)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def _link(previous: str, row_text: str) -> str:
    return hashlib.sha256((previous + row_text).encode()).hexdigest()


@dataclass(slots=True)
class Tally:
    """What an export wrote so far: rows and the last hash (print it: a file cut short shows then)."""

    rows: int = 0
    last_hash: str = GENESIS

    def chain(self, rows: Iterable[Sequence[Any]]) -> str:
        """CSV lines of ``rows``, each with its hash, continuing the chain."""
        lines = []
        for row in rows:
            text = _csv_text([cell(value) for value in row])
            self.last_hash = _link(self.last_hash, text)
            lines.append(f"{text},{self.last_hash}\r\n")
        self.rows += len(lines)
        return "".join(lines)


async def export_csv(
    conn: AsyncConnection, *, since: datetime | None = None, tally: Tally | None = None
) -> AsyncIterator[str]:
    """The header, then chunks of chained rows, oldest entry first (``since``: created at or after)."""
    tally = tally if tally is not None else Tally()
    yield _csv_text(HEADER) + "\r\n"
    query = select(*(ENTRIES.c[name] for name in COLUMNS)).order_by(ENTRIES.c.id)
    if since is not None:
        query = query.where(ENTRIES.c.created_at >= since)
    result = await conn.stream(query.execution_options(yield_per=BATCH))
    async for partition in result.partitions():
        yield tally.chain(partition)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`verify` found: ``problem`` is None when the file is intact."""

    rows: int
    """Rows read and found intact before the first that differs."""
    last_hash: str
    problem: str | None = None
    row: int | None = None
    """The 1-based data row (the header is row 0) that first differs."""
    entry_id: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(lines: Iterable[str], last_hash: str | None = None) -> Verdict:
    """Check an exported file's header and every row's hash, stopping at the first that differs.

    The chain alone cannot show rows cut off the end, or rows appended (or the whole file
    rewritten) by someone who recomputed the hashes: anyone can compute SHA-256. ``last_hash``,
    the hash the export printed when it ended (kept apart from the file), catches those.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or tuple(header) != HEADER:
        return Verdict(0, GENESIS, "the header is not a ledger export's", row=0)
    previous = GENESIS
    count = 0
    for number, record in enumerate(reader, start=1):
        entry_id = record[0] if record else None
        if len(record) != len(HEADER):
            why = f"{len(record)} cells instead of {len(HEADER)}"
            return Verdict(count, previous, why, row=number, entry_id=entry_id)
        expected = _link(previous, _csv_text(record[:-1]))
        if record[-1] != expected:
            why = "its hash does not match its content and the rows before it"
            return Verdict(count, previous, why, row=number, entry_id=entry_id)
        previous = expected
        count += 1
    if last_hash is not None and last_hash.strip().lower() != previous:
        ends = f"the file ends at hash {previous}, not at {last_hash.strip()}"
        why = f"{ends}: rows were cut off, added or rehashed"
        return Verdict(count, previous, why, row=count + 1)
    return Verdict(count, previous)
