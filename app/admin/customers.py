"""``/admin/customers``: find a customer, see what they have, and adjust a balance with a reason.

The adjustment is one operation on the request's transaction: the ``adjustment`` ledger entry
(``app.money.adjustments``, never overdrawn: the database refuses) and its audit row, so both
are committed or neither. The form carries a one-time token that is the entry's ledger key, so
a form sent twice (a double click, a reload after the redirect) adjusts once.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from babel.numbers import format_decimal
from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.account_page import format_when
from app.accounts.models import User
from app.admin.audit import record
from app.admin.pages import admin_page
from app.admin.paging import PageNumber, paginate
from app.buyer_keys.service import list_keys
from app.catalogue.reload import CatalogueHolder
from app.db.sql import SqlConnection, run
from app.i18n import gettext as _
from app.money.adjustments import REASON_MAX, UNITS_MAX, Adjusted, AdjustmentRefused, RemovalTooLarge, adjust
from app.money.credits import customer_balances, list_holds, list_lots
from app.money.ledger import entries
from app.money.models import HoldStatus
from app.web.params import RowId
from app.web.requests import form_texts
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES",)

ENTRIES_SHOWN: Final = 50
_UNITS = re.compile(r"[0-9]{1,16}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")

Search = Annotated[str, Parameter(max_length=320)]


@get("/customers", name="admin:customers", opt={READ_ONLY_OPT: True})
async def search(
    request: Request[Any, Any, Any], db_session: AsyncSession, q: Search = "", page: PageNumber = 1
) -> Template:
    """Customers whose email contains ``q`` or whose external id is ``q``, newest first."""
    query = select(User).order_by(User.id.desc())
    term = q.strip()
    if term:
        query = query.where(
            or_(func.lower(User.email).contains(term.lower(), autoescape=True), User.external_id == term)
        )
    found = await paginate(db_session, query, page)
    locale = i18n.current_locale()
    rows = [{"user": user, "created": format_when(user.created_at, locale)} for user in found.items]
    return admin_page(
        request,
        "customers.html",
        {"rows": rows, "page": found, "q": term, "filters": {"q": term}},
        section="admin:customers",
    )


@dataclass(frozen=True, slots=True)
class AdjustForm:
    """What the admin typed, kept to fill the form again after an error."""

    asset: str = ""
    direction: str = "grant"
    units: str = ""
    reason: str = ""
    token: str = ""


def _when_unix(moment: int | None, locale: str) -> str:
    return "" if moment is None else format_when(datetime.fromtimestamp(moment, UTC), locale)


async def _customer(db: AsyncSession, user_id: int) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFoundException("no such customer")
    return user


def _read(conn: SqlConnection, user_id: int, now: int) -> dict[str, Any]:
    """Everything the detail page shows, read in one operation of the request's transaction."""
    return {
        "balances": list(customer_balances(conn, user_id, now=now).values()),
        "lots": list_lots(conn, user_id, only_remaining=True, limit=200),
        "holds": list_holds(conn, user_id, status=HoldStatus.OPEN.value, limit=200),
        "keys": list_keys(conn, user_id, now=now),
        "entries": entries(conn, user_id, limit=ENTRIES_SHOWN),
    }


async def _detail(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    holder: CatalogueHolder,
    user: User,
    *,
    form: AdjustForm | None = None,
    error: str | None = None,
) -> Template:
    locale = i18n.current_locale()
    babel = i18n.babel_name(locale)
    now = int(time.time())
    found = await run(db, _read, user.id, now)
    catalogue = holder.catalogue
    assets = [(a.id, a.name.get(locale)) for a in catalogue.assets]
    assets += [(b.asset, b.asset) for b in found["balances"] if catalogue.asset(b.asset) is None]
    form = form or AdjustForm(asset=assets[0][0] if assets else "")
    context = {
        "customer": user,
        "created": format_when(user.created_at, locale),
        **found,
        "number": lambda n: format_decimal(n, locale=babel),
        "when": lambda moment: format_when(moment, locale),
        "when_unix": lambda moment: _when_unix(moment, locale),
        "assets": assets,
        "form": form
        if form.token
        else AdjustForm(form.asset, form.direction, form.units, form.reason, _token()),
        "error": error,
        "reason_max": REASON_MAX,
    }
    status = HTTP_400_BAD_REQUEST if error else 200
    return admin_page(request, "customer.html", context, section="admin:customers", status_code=status)


def _token() -> str:
    return secrets.token_urlsafe(18)


@get("/customers/{user_id:int}", name="admin:customer", opt={READ_ONLY_OPT: True})
async def detail(
    request: Request[Any, Any, Any], db_session: AsyncSession, catalogue: CatalogueHolder, user_id: RowId
) -> Template:
    return await _detail(request, db_session, catalogue, await _customer(db_session, user_id))


async def _read_form(request: Request[Any, Any, Any]) -> AdjustForm:
    return AdjustForm(**await form_texts(request, *AdjustForm.__slots__))


def _adjust_and_audit(
    conn: SqlConnection, *, actor_id: int, user_id: int, asset: str, units: int, reason: str, key: str
) -> Adjusted | None:
    """The ledger entry and its audit row, in the same transaction."""
    done = adjust(conn, user_id=user_id, asset=asset, units=units, reason=reason, key=key, actor_id=actor_id)
    if done is not None:
        record(
            conn,
            actor_id,
            "customer.adjust",
            ("customer", user_id),
            reason,
            {"asset": asset, "balance": done.balance_before},
            {"asset": asset, "balance": done.balance_after, "units": units, "entry": done.entry_id},
        )
    return done


def _units(values: AdjustForm) -> int:
    """Signed units from the form; raises ``AdjustmentRefused`` with the admin's message."""
    if values.direction not in ("grant", "remove"):
        raise AdjustmentRefused(_("Choose whether to grant or remove units."))
    if not _UNITS.fullmatch(values.units) or not 1 <= int(values.units) <= UNITS_MAX:
        raise AdjustmentRefused(
            _("Units are a whole number from 1 to %(max)s.")
            % {"max": format_decimal(UNITS_MAX, locale=i18n.babel_name())}
        )
    return int(values.units) if values.direction == "grant" else -int(values.units)


@post("/customers/{user_id:int}/adjust", name="admin:customer_adjust")
async def adjust_balance(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    admin: User,
    user_id: RowId,
) -> Template | Redirect:
    """Grant or remove units with a reason; a refusal re-shows the form (400) and changes nothing."""
    user = await _customer(db_session, user_id)
    values = await _read_form(request)
    known = {a.id for a in catalogue.catalogue.assets}
    try:
        units = _units(values)
        if not values.reason:
            raise AdjustmentRefused(_("Say why: the reason is kept with the entry and in the audit log."))
        if len(values.reason) > REASON_MAX:
            raise AdjustmentRefused(_("The reason is longer than %(max)s characters.") % {"max": REASON_MAX})
        if values.asset not in known and not (await run(db_session, customer_balances, user.id)).get(
            values.asset
        ):
            raise AdjustmentRefused(_("Choose one of the listed balances."))
        if not _TOKEN.fullmatch(values.token):
            raise AdjustmentRefused(_("The form is out of date: look at the balance and send it again."))
        done = await run(
            db_session,
            _adjust_and_audit,
            actor_id=admin.id,
            user_id=user.id,
            asset=values.asset,
            units=units,
            reason=values.reason,
            key=f"adjust:{values.token}",
        )
    except RemovalTooLarge as short:
        babel = i18n.babel_name()
        message = _("Cannot remove %(units)s: only %(spendable)s can be removed now.") % {
            "units": format_decimal(-units, locale=babel),
            "spendable": format_decimal(short.spendable, locale=babel),
        }
        return await _detail(request, db_session, catalogue, user, form=values, error=message)
    except AdjustmentRefused as refused:
        return await _detail(request, db_session, catalogue, user, form=values, error=str(refused))
    if done is None:
        flash(request, _("This adjustment was already made."), category="info")
    else:
        flash(
            request,
            _("The balance was adjusted and the change recorded in the audit log."),
            category="success",
        )
    return Redirect(
        path=request.app.route_reverse("admin:customer", user_id=user.id), status_code=HTTP_303_SEE_OTHER
    )


ROUTES: list[Any] = [search, detail, adjust_balance]
