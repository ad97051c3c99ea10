"""The sandbox's data and its persistence: object collections, hidden facts and the state file.

Everything a restart must bring back lives on `Store`, so one place says what is saved and the
other modules only change it. Objects are the JSON dicts Stripe would return, which keeps serving
and persisting cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec

from .config import SandboxConfig
from .errors import StripeError, invalid, no_such
from .objects import Obj

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

# What the state file holds besides the clock: collections of objects, then plain JSON facts.
COLLECTIONS = (
    "sessions",
    "payment_intents",
    "charges",
    "refunds",
    "disputes",
    "events",
    "balance_transactions",
    "products",
    "prices",
    "customers",
    "coupons",
    "promotion_codes",
    "tax_rates",
)
FACTS = (
    "line_items",
    "session_extra",
    "challenges",
    "pending_debits",
    "idempotency",
    "delivery_status",
    "delivery_attempts",
)


def snapshot(obj: Obj) -> Obj:
    """A deep copy via JSON, far cheaper than copy.deepcopy for these plain trees."""
    result: Obj = _decoder.decode(_encoder.encode(obj))
    return result


class Collection:
    """Objects of one kind in creation order: O(1) lookup by id and cheap newest-first paging."""

    def __init__(self) -> None:
        self.by_id: dict[str, Obj] = {}
        self.order: list[str] = []
        self.index: dict[str, int] = {}

    def add(self, obj: Obj) -> Obj:
        oid = obj["id"]
        self.by_id[oid] = obj
        self.index[oid] = len(self.order)
        self.order.append(oid)
        return obj

    def get(self, oid: str) -> Obj | None:
        return self.by_id.get(oid)

    def live(self, oid: str) -> Obj | None:
        """The object unless it is missing or the stub Stripe leaves of a deleted one."""
        obj = self.by_id.get(oid)
        return None if obj is None or obj.get("deleted") else obj

    def __len__(self) -> int:
        return len(self.order)

    def page(
        self,
        *,
        kind: str,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        match: Callable[[Obj], bool] | None = None,
    ) -> tuple[list[Obj], bool]:
        """Stripe list semantics: newest first; cursors exclude the named object."""
        if starting_after and ending_before:
            raise invalid("You may only specify one of these parameters: starting_after, ending_before.")
        found: list[Obj] = []
        if ending_before:
            pos = self._cursor(kind, ending_before, "ending_before")
            indices: Iterable[int] = range(pos + 1, len(self.order))
        else:
            start = (
                self._cursor(kind, starting_after, "starting_after") if starting_after else len(self.order)
            )
            indices = range(start - 1, -1, -1)
        for i in indices:
            obj = self.by_id[self.order[i]]
            if match is None or match(obj):
                found.append(obj)
                if len(found) > limit:
                    break
        has_more = len(found) > limit
        found = found[:limit]
        if ending_before:
            found.reverse()
        return found, has_more

    def _cursor(self, kind: str, oid: str, param: str) -> int:
        pos = self.index.get(oid)
        if pos is None:
            raise StripeError(f"No such {kind}: '{oid}'", code="resource_missing", param=param)
        return pos

    def dump(self) -> list[Obj]:
        return [self.by_id[i] for i in self.order]

    def load(self, items: list[Obj]) -> None:
        for item in items:
            self.add(item)


class Store:
    """All sandbox data, loaded from and saved to `config.state_file` when one is set."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock_offset = 0.0
        self.sessions = Collection()
        self.payment_intents = Collection()
        self.charges = Collection()
        self.refunds = Collection()
        self.disputes = Collection()
        self.events = Collection()
        self.balance_transactions = Collection()
        self.products = Collection()
        self.prices = Collection()
        self.customers = Collection()
        self.coupons = Collection()
        self.promotion_codes = Collection()
        self.tax_rates = Collection()
        self.line_items: dict[str, list[Obj]] = {}
        # Hidden per-session facts Stripe keeps but doesn't expose (attempt PI, metadata for PI).
        self.session_extra: dict[str, Obj] = {}
        # Pending 3-D Secure challenges: PaymentIntent id -> card facts to finish with.
        self.challenges: dict[str, Obj] = {}
        self.pending_debits: list[Obj] = []
        self.idempotency: dict[str, Obj] = {}
        # event id -> {endpoint url: "pending" | "succeeded" | "failed"}
        self.delivery_status: dict[str, dict[str, str]] = {}
        self.delivery_attempts: list[Obj] = []
        self._dirty = asyncio.Event() if config.state_file else None
        if config.state_file and Path(config.state_file).exists():
            self._load(Path(config.state_file))

    # ------------------------------------------------------------------------------- lookups

    def fetch(self, oid: str) -> Obj | None:
        """Any object by its id prefix (used for expansion)."""
        for prefix, coll in (
            ("cs_", self.sessions),
            ("pi_", self.payment_intents),
            ("ch_", self.charges),
            ("py_", self.charges),
            ("re_", self.refunds),
            ("du_", self.disputes),
            ("dp_", self.disputes),
            ("txn_", self.balance_transactions),
            ("evt_", self.events),
            ("prod_", self.products),
            ("price_", self.prices),
            ("cus_", self.customers),
            ("promo_", self.promotion_codes),
            ("txr_", self.tax_rates),
        ):
            if oid.startswith(prefix):
                return coll.get(oid)
        # Coupon ids are the merchant's own (`SUMMER25`), so they carry no prefix.
        return self.coupons.get(oid)

    def get_or_404(self, coll: Collection, kind: str, oid: str) -> Obj:
        obj = coll.get(oid)
        if obj is None:
            raise no_such(kind, oid)
        return obj

    # --------------------------------------------------------------------------- persistence

    def mark_dirty(self) -> None:
        if self._dirty is not None:
            self._dirty.set()

    def dump(self) -> bytes:
        state: Obj = {"version": 2, "clock_offset": self.clock_offset}
        state.update((name, getattr(self, name).dump()) for name in COLLECTIONS)
        state.update((name, getattr(self, name)) for name in FACTS)
        return _encoder.encode(state)

    def _load(self, path: Path) -> None:
        data: Obj = _decoder.decode(path.read_bytes())
        self.clock_offset = float(data["clock_offset"])
        # Version 1 files predate the catalogue, customers, discounts and tax rates (and kept
        # registered prices as a hidden fact); they load with those collections empty.
        for name in COLLECTIONS:
            items = data.get(name, [])
            getattr(self, name).load(items if isinstance(items, list) else [])
        for name in FACTS:
            setattr(self, name, data[name])

    def save_now(self) -> None:
        """Write the state file atomically (temp file + rename) so a crash never leaves half a file."""
        path = self.config.state_file
        if path is None:
            return
        payload = self.dump()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def run_saver(self) -> None:
        """Debounced persistence: at most one write per `save_debounce` seconds."""
        if self._dirty is None:
            return
        try:
            while True:
                await self._dirty.wait()
                await asyncio.sleep(self.config.save_debounce)
                self._dirty.clear()
                self.save_now()
        finally:
            if self._dirty.is_set():
                self.save_now()
