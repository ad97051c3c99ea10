"""The money core: orders, the ledger, and Stripe's effects on them, read top to bottom.

Reading order, each module importing only those above it:

1. ``fields``       — validating accessors for Stripe's fields (``int_field``, ``optional_id``...):
   bad data raises ``BadEventData``, stored as a failed event instead of a 5xx.
2. ``models``       — the tables: ``Order`` (with ``OrderStatus``), ``LedgerEntry``, ``Balance``,
   ``CreditLot``, ``LotMovement``, ``CreditHold``, ``StripeEvent``.
3. ``orders``       — the order state machine (conditional UPDATEs, never backwards) and the
   locked ``OrderRow`` money decisions read.
4. ``ledger``       — append-only entries with idempotency keys, balances moved in SQL (the
   spending move is one conditional UPDATE: never overdrawn).
5. ``lots``         — credit lots, spent soonest-expiring, then promotional, then oldest; every
   change a movement of the entry that made it.
6. ``credits``      — credits (paying debt first), debits, holds, expiry, and the take-backs of
   refunds and disputes (what was spent becomes debt).
7. ``event_store``  — each Stripe event stored once, with its outcome or waiting for a credit;
   the failed ones listed for an operator.
8. ``reversals``    — refunds and disputes, and the replay of those that came before the credit.
9. ``fulfilment``   — ``fulfil_checkout``: credit a paid Checkout Session exactly once.
10. ``events``       — ``process_event``: store an event and apply its effect in one transaction;
   ``replay_event`` runs a stored one again.

Every operation is written once, synchronously, on a connection in the caller's transaction
(``app.db.sql.SqlConnection``: SQLAlchemy's ``Connection``, or in the webhook writers
``app.db.compiled.CompiledConnection``); async callers run it with
``app.db.sql.run(db, operation, ...)``, which on PostgreSQL also runs it again when it was a
deadlock's victim. Nothing here commits.
Exactly-once and never-backwards are enforced by the database (unique keys, conditional
updates), never by check-then-act in Python.
"""
