"""The order-status fragment the success page polls, and the cheap path that makes polling cheap.

Polling hits this handler every second per waiting buyer, so it skips the session middleware
(which would read *and rewrite* the session row on every poll) and authorises the viewer from
the session cookie through a short-lived in-process cache. Fragments of orders in a state that
never changes again are rendered once per (order, language) and served from memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final, cast

from litestar import Request
from litestar.serialization import decode_json
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.auth import SESSION_USER_ID
from app.catalogue.model import Catalogue
from app.catalogue.money import format_money
from app.i18n import gettext as _
from app.money.models import LedgerEntry, Order, OrderStatus
from app.stripe_gateway import PaymentProviderError, StripeGateway, as_mapping
from app.web import raw

VIEWER_TTL: Final = 10.0
"""Seconds a session cookie stays trusted without re-reading the session store."""
STOP_POLLING: Final = 286
"""htmx stops an ``every`` trigger when the response has this status."""
POLL_FAST: Final = "every 1s"
POLL_SLOW: Final = "every 5s"


class _LRU:
    """A tiny bounded mapping; old entries fall out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()


@dataclass(frozen=True, slots=True)
class CachedFragment:
    owner_id: int
    body: bytes


_viewers = _LRU(50_000)
_fragments = _LRU(50_000)
_receipts = _LRU(50_000)


def clear_caches() -> None:
    """Forget cached viewers and fragments (tests)."""
    _viewers.clear()
    _fragments.clear()
    _receipts.clear()


async def viewer_id(request: Request[Any, Any, Any]) -> int | None:
    """The signed-in user's id from the session cookie, re-read from the store every few seconds."""
    cookie = raw.live_session_id(request.cookies.get(raw.SESSION_COOKIE))
    if cookie is None:
        return None
    now = time.monotonic()
    hit = _viewers.get(cookie)
    if hit is not None and hit[1] > now:
        return int(hit[0]) if hit[0] is not None else None
    store = request.app.stores.get("sessions")
    stored = await store.get(cookie)
    user_id: int | None = None
    if stored:
        data = decode_json(stored)
        value = data.get(SESSION_USER_ID) if isinstance(data, dict) else None
        user_id = value if isinstance(value, int) and not isinstance(value, bool) else None
    _viewers.put(cookie, (user_id, now + VIEWER_TTL))
    return user_id


def cached_fragment(order_id: int, locale: str, user_id: int) -> bytes | None:
    hit: CachedFragment | None = _fragments.get((order_id, locale))
    if hit is None or hit.owner_id != user_id:
        return None
    return hit.body


def remember_fragment(order: Order, locale: str, body: bytes) -> None:
    if OrderStatus(order.status).settled:
        _fragments.put((order.id, locale), CachedFragment(owner_id=order.user_id, body=body))


async def credited_balance(db: AsyncSession, order: Order) -> int | None:
    """Balance right after this order's credit: immutable, so the fragment can be cached."""
    entry = await db.scalar(
        select(LedgerEntry)
        .where(LedgerEntry.order_id == order.id, LedgerEntry.units > 0)
        .order_by(LedgerEntry.id)
        .limit(1)
    )
    return entry.balance_after if entry is not None else None


async def receipt_url(gateway: StripeGateway, order: Order) -> str | None:
    """The paid charge's ``receipt_url`` from Stripe, asked once per order and process.

    Nothing stores it (no migration for a link Stripe keeps for us), and a paid order's
    fragment is cached after its first render, so this is one call per paid order; when
    Stripe does not answer, the page links to the order on the account page instead.
    """
    if order.status != OrderStatus.PAID or not order.stripe_session_id:
        return None
    hit: str | None = _receipts.get(order.id)
    if hit is not None:
        return hit or None
    try:
        session = as_mapping(
            await gateway.retrieve_session(order.stripe_session_id, expand=("payment_intent.latest_charge",))
        )
    except PaymentProviderError:
        return None
    intent = session.get("payment_intent")
    charge = intent.get("latest_charge") if isinstance(intent, dict) else None
    found = charge.get("receipt_url") if isinstance(charge, dict) else None
    url = found if isinstance(found, str) and found.startswith(("https://", "http://")) else ""
    _receipts.put(order.id, url)
    return url or None


def units_text(catalogue: Catalogue, asset_id: str, count: int, locale: str) -> str:
    return f"{count:,} {catalogue.unit_label(asset_id, count, locale)}"


def bonus_text(catalogue: Catalogue, order: Order, locale: str) -> str:
    """The bonus spelled out ("500 coins plus a bonus of 50 coins"), or empty for a pack without one."""
    if not order.bonus:
        return ""
    return _("That is %(units)s plus a bonus of %(bonus)s.") % {
        "units": units_text(catalogue, order.asset, order.units, locale),
        "bonus": units_text(catalogue, order.asset, order.bonus, locale),
    }


def status_context(
    order: Order,
    catalogue: Catalogue,
    locale: str,
    *,
    balance_after: int | None,
    receipt_url: str | None = None,
) -> dict[str, Any]:
    """Everything the fragment shows; no request-specific data, so a final one can be shared."""
    status = OrderStatus(order.status)
    pack = catalogue.get(order.pack_id)
    return {
        "order": order,
        "status": status.value,
        "final": status.final,
        "poll": None
        if status.final
        else (POLL_SLOW if status == OrderStatus.AWAITING_PAYMENT else POLL_FAST),
        "lang": locale,
        "units_text": units_text(catalogue, order.asset, order.total_units, locale),
        "balance_text": units_text(catalogue, order.asset, balance_after, locale)
        if balance_after is not None
        else None,
        # What the buyer paid once Stripe said (after a code, with tax added), else the price.
        "price_text": format_money(order.paid, order.currency, i18n.babel_name(locale)),
        "bonus_text": bonus_text(catalogue, order, locale),
        "pack_name": pack.name.get(locale) if pack is not None else order.pack_name,
        "receipt_url": receipt_url,
        "can_retry": catalogue.get_active(order.pack_id) is not None,
    }


_STATUS_PREFIX: Final = "/checkout/status/"
_FAST_HEADERS: Final = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"private, no-store"),
]


def _cached_viewer(cookie: str) -> int | None:
    hit = _viewers.get(cookie)
    if hit is None or hit[1] <= time.monotonic() or hit[0] is None:
        return None
    return int(hit[0])


def order_status_fast_path(app: ASGIApp) -> ASGIApp:
    """Answer a poll for a final order from memory when the viewer was authorised moments ago.

    Runs after ``locale_middleware`` and before everything else: a hit touches neither the
    database nor the session store, and skips the metrics, session and CSRF middleware. Any
    miss (first poll, viewer not seen for ``VIEWER_TTL`` seconds, order not final) goes to the
    full handler, which authorises the viewer and fills both caches.
    """

    async def middleware(asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope = cast("dict[str, Any]", asgi_scope)
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "GET" or not path.startswith(_STATUS_PREFIX):
            await app(asgi_scope, receive, send)
            return
        tail = path[len(_STATUS_PREFIX) :]
        cookie = raw.live_session_id(raw.cookies(asgi_scope).get(raw.SESSION_COOKIE))
        # ASCII digits only: "²".isdigit() is true, yet int("²") raises.
        user_id = _cached_viewer(cookie) if cookie and tail.isascii() and tail.isdigit() else None
        if user_id is None:
            await app(asgi_scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        lang = query.partition(b"lang=")[2][:2].decode("latin-1") if b"lang=" in query else ""
        locale = lang if lang in i18n.SUPPORTED else str(scope.get("state", {}).get("locale", i18n.DEFAULT))
        body = cached_fragment(int(tail), locale, user_id)
        if body is None:
            await app(asgi_scope, receive, send)
            return
        await raw.send_bytes(send, STOP_POLLING, _FAST_HEADERS, body)

    return middleware
