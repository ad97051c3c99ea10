"""Balance transactions: the one helper that books money moving on the sandbox account.

Charges, refunds and disputes all book through `book`, so every entry gets its id, its place in
`store.balance_transactions` and a Stripe `type` that follows from its reporting category.
"""

from __future__ import annotations

from . import objects
from .ids import new_id
from .objects import Obj
from .store import Store

# Stripe's balance transaction `type` for each `reporting_category` the sandbox books.
_TYPES = {
    "charge": "charge",
    "refund": "refund",
    "dispute": "adjustment",
    "dispute_reversal": "adjustment",
}


def book(
    store: Store,
    *,
    category: str,
    created: int,
    amount: int,
    currency: str,
    source: str,
    description: str | None,
) -> Obj:
    """Record and return a new balance transaction; `amount` is signed (negative takes money out)."""
    return store.balance_transactions.add(
        objects.balance_transaction(
            txn_id=new_id("txn_"),
            created=created,
            amount=amount,
            currency=currency,
            source=source,
            kind=_TYPES[category],
            category=category,
            description=description,
        )
    )
