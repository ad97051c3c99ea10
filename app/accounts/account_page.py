"""The buyer's account page: balances of every asset, purchases and the ledger, newest first.

The ledger list pages with ``?before=<entry id>`` (keyset, stable while new entries arrive);
the "Show older" link is a plain link that htmx turns into an in-place append.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from babel import Locale
from babel.dates import DateTimePattern, format_date, parse_pattern
from babel.numbers import format_decimal
from litestar import Response, get
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.models import User
from app.buyer_keys.web import NO_STORE, key_section, take_new_key
from app.buyer_keys.web import ROUTES as BUYER_KEY_ROUTES
from app.catalogue.model import Catalogue
from app.catalogue.money import format_money
from app.catalogue.reload import CatalogueHolder
from app.db.sql import run
from app.i18n import gettext as _
from app.money.credits import AssetBalance, customer_balances
from app.money.ledger import EntryRow, balances, entries
from app.money.models import LedgerEntry, Order, OrderStatus
from app.web.params import OptionalRowId
from app.web.transactions import READ_ONLY_OPT

ENTRIES_PAGE: Final = 20
PURCHASES_SHOWN: Final = 50


@dataclass(frozen=True, slots=True)
class BalanceRow:
    asset_id: str
    name: str
    available: int
    held: int
    pending: int
    unit_available: str
    unit_held: str
    unit_pending: str
    reserved: int = 0
    expiring: str = ""
    """"N units expire on DATE" for the soonest expiry, or empty."""

    @property
    def owed(self) -> int:
        return -self.available if self.available < 0 else 0


def status_label(status: str) -> str:
    """An order status in the buyer's language."""
    labels = {
        OrderStatus.PENDING: _("Starting"),
        OrderStatus.OPEN: _("Waiting for payment"),
        OrderStatus.AWAITING_PAYMENT: _("Waiting for bank payment"),
        OrderStatus.PAID: _("Paid"),
        OrderStatus.FAILED: _("Failed"),
        OrderStatus.EXPIRED: _("Expired"),
        OrderStatus.CANCELED: _("Canceled"),
        OrderStatus.NEEDS_REVIEW: _("Being checked"),
    }
    return labels.get(status, status)  # type: ignore[call-overload,no-any-return]


def kind_label(kind: str) -> str:
    """A ledger entry kind in the buyer's language (unknown kinds are shown as written)."""
    labels = {
        "purchase": _("Purchase"),
        "refund": _("Refund"),
        "refund_total": _("Refund"),
        "dispute_hold": _("Held for a dispute"),
        "dispute_release": _("Dispute won: released"),
        "dispute_loss": _("Dispute lost"),
        "adjustment": _("Adjustment"),
        "spend": _("Used"),
        "debit": _("Used"),
        "grant": _("Granted"),
        "hold": _("Reserved"),
        "capture": _("Reservation settled"),
        "release": _("Reservation released"),
        "hold_expiry": _("Reservation expired"),
        "expiry": _("Expired"),
    }
    return labels.get(kind, kind)


def format_when(moment: datetime | None, locale: str) -> str:
    """A date and time for the buyer's language, in UTC (the server does not know the buyer's zone)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    date_pattern, time_pattern, babel = _when_patterns(i18n.babel_name(locale))
    moment = moment.astimezone(UTC)
    shown = f"{date_pattern.apply(moment, babel)} {time_pattern.apply(moment, babel)}"
    return _("%(when)s UTC") % {"when": shown}


@lru_cache(maxsize=8)
def _when_patterns(babel_name: str) -> tuple[DateTimePattern, DateTimePattern, Locale]:
    """Babel's medium date and ``HH:mm``, parsed once per language: ``format_date`` and
    ``format_time`` parse the locale and the pattern on every call (~22 µs a time here, for
    every entry of the history)."""
    babel = Locale.parse(babel_name)
    return parse_pattern(babel.date_formats["medium"]), parse_pattern("HH:mm"), babel


def pack_name(catalogue: Catalogue, order: Order, locale: str) -> str:
    """The pack's name in the page's language; the name stored at purchase time if it was retired."""
    pack = catalogue.get(order.pack_id)
    return pack.name.get(locale) if pack is not None else order.pack_name


def entry_details(catalogue: Catalogue, entry: EntryRow, order: Order | None, locale: str) -> str:
    """What an entry is about, in the page's language, naming its order when it has one.

    The stored ``reason`` is an operator's note in English; entries tied to an order are
    described from the order instead so a Chinese page shows no English.
    """
    if order is None:
        return entry.reason
    babel = i18n.babel_name(locale)
    values = {"id": order.id, "name": pack_name(catalogue, order, locale)}
    if entry.kind == "purchase" and order.bonus:
        return _("Order %(id)s: %(name)s (%(units)s + %(bonus)s bonus)") % {
            **values,
            "units": format_decimal(order.units, locale=babel),
            "bonus": format_decimal(order.bonus, locale=babel),
        }
    if entry.amount and entry.kind in ("refund", "refund_total"):
        money = format_money(entry.amount, order.currency, babel)
        return _("Order %(id)s: %(name)s, %(amount)s refunded") % {**values, "amount": money}
    if entry.amount and entry.kind.startswith("dispute_"):
        money = format_money(entry.amount, order.currency, babel)
        return _("Order %(id)s: %(name)s, %(amount)s disputed") % {**values, "amount": money}
    return _("Order %(id)s: %(name)s") % values


def shown_to_buyer(entry: EntryRow) -> bool:
    """False for the ledger's internal rows that change nothing the buyer sees.

    A refund is booked both by its id and as the charge's refunded total; whichever comes
    second takes nothing more and was shown as a puzzling "+0 coins".
    """
    return bool(entry.units or entry.held_units)


REVERSAL_KINDS: Final = ("refund", "refund_total", "dispute_hold", "dispute_release", "dispute_loss")


@dataclass(frozen=True, slots=True)
class PurchaseState:
    """Where a purchase stands for the buyer, derived from its order and its ledger entries."""

    key: str
    """``paid``, ``partially_refunded``, ``refunded``, ``disputed``, ``dispute_won``, ``dispute_lost``
    or the order's own status."""
    label: str
    note: str = ""


def purchase_state(order: Order, reversals: list[tuple[str, int | None, str]], locale: str) -> PurchaseState:
    """The buyer's word for a purchase: refunds and disputes read from the entries of its order.

    ``reversals`` are (kind, amount, idempotency key) in the order they were written. The refunded
    money is the larger of the refunds by id and the charge's refunded total, as
    ``app.money.reversals`` counts it; a dispute's state is its latest entry (keys end in its id).
    """
    if order.status != OrderStatus.PAID:
        return PurchaseState(order.status, status_label(order.status))
    by_id = sum(amount or 0 for kind, amount, _key in reversals if kind == "refund")
    total = max((amount or 0 for kind, amount, _key in reversals if kind == "refund_total"), default=0)
    refunded = min(max(by_id, total), order.paid)
    disputes: dict[str, str] = {}
    for kind, _amount, key in reversals:
        if kind.startswith("dispute_"):
            disputes[key.partition(":")[2]] = kind
    babel = i18n.babel_name(locale)
    note = ""
    if refunded:
        note = _("%(refunded)s of %(price)s refunded") % {
            "refunded": format_money(refunded, order.currency, babel),
            "price": format_money(order.paid, order.currency, babel),
        }
    if "dispute_hold" in disputes.values():
        return PurchaseState("disputed", _("Disputed"), note)
    if disputes:
        last = list(disputes.values())[-1]
        if last == "dispute_loss":
            return PurchaseState("dispute_lost", _("Dispute lost"), note)
        return PurchaseState("dispute_won", _("Dispute won"), note)
    if refunded >= order.paid > 0:
        return PurchaseState("refunded", _("Refunded"), note)
    if refunded:
        return PurchaseState("partially_refunded", _("Partially refunded"), note)
    return PurchaseState("paid", _("Paid"))


async def order_reversals(
    db: AsyncSession, order_ids: list[int]
) -> dict[int, list[tuple[str, int | None, str]]]:
    """Refund and dispute entries of these orders, oldest first, by order."""
    found: dict[int, list[tuple[str, int | None, str]]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return found
    rows = await db.execute(
        select(LedgerEntry.order_id, LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.idempotency_key)
        .where(LedgerEntry.order_id.in_(order_ids), LedgerEntry.kind.in_(REVERSAL_KINDS))
        .order_by(LedgerEntry.id)
    )
    for order_id, kind, amount, key in rows:
        if order_id is not None:
            found.setdefault(order_id, []).append((kind, amount, key))
    return found


def _expiring(catalogue: Catalogue, view: AssetBalance | None, locale: str) -> str:
    if view is None or view.next_expiry_at is None or not view.next_expiry_units:
        return ""
    babel = i18n.babel_name(locale)
    when = format_date(datetime.fromtimestamp(view.next_expiry_at, UTC), "medium", locale=babel)
    return _("%(units)s %(unit)s expire on %(date)s") % {
        "units": format_decimal(view.next_expiry_units, locale=babel),
        "unit": catalogue.unit_label(view.asset, view.next_expiry_units, locale),
        "date": when,
    }


async def balance_rows(db: AsyncSession, user_id: int, catalogue: Catalogue, locale: str) -> list[BalanceRow]:
    """One row per catalogue asset (zero when never bought), then any retired asset still held."""
    held_by_asset = await run(db, balances, user_id)
    detailed = await run(db, customer_balances, user_id)
    pending_rows = await db.execute(
        select(Order.asset, func.sum(Order.units + Order.bonus))
        .where(Order.user_id == user_id, Order.status == OrderStatus.AWAITING_PAYMENT)
        .group_by(Order.asset)
    )
    pending = {asset: int(total or 0) for asset, total in pending_rows}
    asset_ids = [a.id for a in catalogue.assets]
    asset_ids += sorted((set(held_by_asset) | set(pending)) - set(asset_ids))
    rows = []
    for asset_id in asset_ids:
        view = held_by_asset.get(asset_id)
        available, held = (view.available, view.held) if view is not None else (0, 0)
        asset = catalogue.asset(asset_id)
        rows.append(
            BalanceRow(
                asset_id=asset_id,
                name=asset.name.get(locale) if asset is not None else asset_id,
                available=available,
                held=held,
                pending=pending.get(asset_id, 0),
                unit_available=catalogue.unit_label(asset_id, available, locale),
                unit_held=catalogue.unit_label(asset_id, held, locale),
                unit_pending=catalogue.unit_label(asset_id, pending.get(asset_id, 0), locale),
                reserved=detailed[asset_id].reserved if asset_id in detailed else 0,
                expiring=_expiring(catalogue, detailed.get(asset_id), locale),
            )
        )
    return rows


async def entries_page(
    db: AsyncSession, user_id: int, before: int | None
) -> tuple[list[EntryRow], int | None]:
    """A page of entries and the ``before`` value of the next (older) page, if there is one."""
    found = await run(db, entries, user_id, limit=ENTRIES_PAGE + 1, before_id=before)
    page = found[:ENTRIES_PAGE]
    return page, (page[-1].id if len(found) > ENTRIES_PAGE and page else None)


def _entry_context(
    catalogue: Catalogue, locale: str, rows: list[EntryRow], orders: dict[int, Order]
) -> list[dict[str, Any]]:
    shown = []
    for entry in filter(shown_to_buyer, rows):
        asset = catalogue.asset(entry.asset)
        shown.append(
            {
                "entry": entry,
                "kind": kind_label(entry.kind),
                "asset": asset.name.get(locale) if asset is not None else entry.asset,
                "units": entry.units,
                "held_units": entry.held_units,
                "unit": catalogue.unit_label(entry.asset, entry.units, locale),
                "when": format_when(entry.created_at, locale),
                "details": entry_details(
                    catalogue, entry, orders.get(entry.order_id) if entry.order_id else None, locale
                ),
            }
        )
    return shown


@get("/account", name="account:page", request_class=HTMXRequest, opt={READ_ONLY_OPT: True})
async def account_page(
    request: HTMXRequest,
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    user: User,
    before: OptionalRowId = None,
) -> Response[Any]:
    """Signed-in buyers only: the ``user`` dependency sends anyone else to sign in and back."""
    live = catalogue.catalogue
    locale = i18n.current_locale()
    page, next_before = await entries_page(db_session, user.id, before)
    order_ids = {e.order_id for e in page if e.order_id is not None}
    entry_orders = (
        {o.id: o for o in await db_session.scalars(select(Order).where(Order.id.in_(order_ids)))}
        if order_ids
        else {}
    )
    entry_rows = _entry_context(live, locale, page, entry_orders)
    if request.htmx and before is not None:
        return HTMXTemplate(
            template_name="accounts/partials/account_entries.html",
            context={"entries": entry_rows, "next_before": next_before},
        )
    orders = list(
        await db_session.scalars(
            select(Order).where(Order.user_id == user.id).order_by(Order.id.desc()).limit(PURCHASES_SHOWN)
        )
    )
    babel = i18n.babel_name(locale)
    new_key = take_new_key(request, user)  # a key made just before the redirect: shown this once
    reversals = await order_reversals(db_session, [o.id for o in orders])
    purchases = [
        {
            "order": o,
            "state": purchase_state(o, reversals[o.id], locale),
            "waiting": OrderStatus(o.status).waiting,
            "price": format_money(o.paid, o.currency, babel),
            "discount": format_money(o.amount_discount, o.currency, babel) if o.amount_discount else "",
            "tax": format_money(o.amount_tax, o.currency, babel) if o.amount_tax else "",
            "units": o.total_units,
            "unit": live.unit_label(o.asset, o.total_units, locale),
            "when": format_when(o.created_at, locale),
            "name": pack_name(live, o, locale),
        }
        for o in orders
    ]
    return Template(
        template_name="accounts/account.html",
        context={
            "current_user": user,
            "balances": await balance_rows(db_session, user.id, live, locale),
            "purchases": purchases,
            "entries": entry_rows,
            "next_before": next_before,
            "older_page": before is not None,
            "api_keys": await key_section(db_session, user, live, locale, new_key=new_key),
        },
        headers=NO_STORE if new_key is not None else None,
    )


ROUTES: list[Any] = [account_page, *BUYER_KEY_ROUTES]
