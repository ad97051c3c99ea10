"""Balance adjustments by an operator: grant or remove units, always with a reason.

An adjustment is a ledger entry of kind ``adjustment`` made through the same core as every
other change (:func:`app.money.credits.credit` / :func:`app.money.credits.debit`), so a
removal is a debit: the check and the move are one conditional UPDATE and a removal larger
than what is spendable is refused by the database, whatever runs at the same time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from app.db.sql import SqlConnection
from app.money.credits import Insufficient, credit, debit
from app.money.fields import BIGINT_MAX
from app.money.models import LotKind

__all__ = ("KIND", "REASON_MAX", "UNITS_MAX", "Adjusted", "AdjustmentRefused", "RemovalTooLarge", "adjust")

KIND: Final = "adjustment"
REASON_MAX: Final = 500
UNITS_MAX: Final = 2**53


class AdjustmentRefused(ValueError):
    """The adjustment cannot be made as asked; the message says why. Nothing changed."""


class RemovalTooLarge(AdjustmentRefused):
    """A removal of more than is spendable now (``spendable``)."""

    def __init__(self, units: int, asset: str, spendable: int) -> None:
        super().__init__(f"cannot remove {units} {asset}: only {spendable} can be removed now")
        self.spendable = spendable


@dataclass(frozen=True, slots=True)
class Adjusted:
    entry_id: int
    units: int
    """Signed: positive granted, negative removed."""
    balance_before: int
    """Net balance (spendable minus debt) before and after the entry."""
    balance_after: int


def adjust(
    conn: SqlConnection,
    *,
    user_id: int,
    asset: str,
    units: int,
    reason: str,
    key: str,
    actor_id: int | None = None,
    now: int | None = None,
) -> Adjusted | None:
    """Grant (``units > 0``) or remove (``units < 0``) units; ``None`` if ``key`` was used before.

    Granted units become a promotional lot that never expires; removed ones leave like a
    debit (soonest-expiring lot first). Raises :class:`AdjustmentRefused` for a missing
    reason, zero or too many units, or a removal larger than what is spendable.
    """
    reason = reason.strip()
    if not reason:
        raise AdjustmentRefused("a reason is required")
    if len(reason) > REASON_MAX:
        raise AdjustmentRefused(f"the reason is longer than {REASON_MAX} characters")
    if units == 0 or abs(units) > min(UNITS_MAX, BIGINT_MAX):
        raise AdjustmentRefused(f"adjust by 1 to {UNITS_MAX} units, up or down")
    details = json.dumps({"admin": actor_id}) if actor_id is not None else None
    if units > 0:
        entry = credit(
            conn,
            user_id=user_id,
            asset=asset,
            units=units,
            kind=KIND,
            lot_kind=LotKind.PROMOTIONAL,
            key=key,
            reason=reason,
            details=details,
        )
        if entry is None:
            return None
        return Adjusted(entry.id, units, entry.balance_after - units, entry.balance_after)
    try:
        spent = debit(
            conn,
            user_id=user_id,
            asset=asset,
            units=-units,
            key=key,
            reason=reason,
            details=details,
            now=now,
            kind=KIND,
        )
    except Insufficient as short:
        raise RemovalTooLarge(-units, asset, short.spendable) from None
    if spent is None:
        return None
    return Adjusted(spent.entry_id, units, spent.available - units, spent.available)
