"""The "API keys" section of the account page: make a key (shown once), list them, revoke one.

Works without JavaScript (POST, then 303 back to ``/account#api-keys``) and with htmx (the
section is swapped in place). Without JavaScript the new key crosses the redirect in the
server-side session and is removed from it when the account page shows it, so it is shown once;
with htmx it is only ever in the response.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.plugins.flash import flash
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.models import User
from app.buyer_keys.service import (
    MAX_COST,
    NAME_MAX,
    CapPeriod,
    CreatedKey,
    KeyInputError,
    KeyNotFound,
    KeyView,
    create_key,
    list_keys,
    revoke_key,
)
from app.catalogue.model import Catalogue
from app.catalogue.reload import CatalogueHolder
from app.db.sql import run
from app.i18n import gettext as _
from app.web.params import RowId
from app.web.requests import form_texts

__all__ = ("NO_STORE", "ROUTES", "SECTION_TEMPLATE", "key_section", "take_new_key")

SECTION_TEMPLATE: Final = "buyer_keys/partials/section.html"
SESSION_NEW_KEY: Final = "buyer_key_new"
"""Session entry carrying a just-made key across the no-JavaScript redirect, removed when shown."""
NEW_KEY_SHOWN_FOR: Final = 600
"""Seconds the session keeps a new key for the redirect's page; an older one is dropped unseen."""
_DIGITS = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True, slots=True)
class FormValues:
    """What the buyer typed, kept to fill the form again after an error."""

    name: str = ""
    asset: str = ""
    cap: str = ""
    cap_period: str = CapPeriod.DAY.value
    expires: str = ""


def _when(moment: datetime | None, locale: str) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    babel = i18n.babel_name(locale)
    shown = f"{format_date(moment, 'medium', locale=babel)} {format_time(moment, 'HH:mm', locale=babel)}"
    return _("%(when)s UTC") % {"when": shown}


def _last_day(expires_at: int | None, locale: str) -> str:
    """The last UTC day a key works (``expires_at`` is the midnight after it)."""
    if expires_at is None:
        return ""
    day = datetime.fromtimestamp(expires_at - 1, UTC).date()
    return format_date(day, "medium", locale=i18n.babel_name(locale))


def _cap_text(cap_units: int | None, cap_period: str | None, locale: str) -> str:
    if cap_units is None:
        return ""
    units = format_decimal(cap_units, locale=i18n.babel_name(locale))
    if cap_period == CapPeriod.MONTH:
        return _("%(units)s per month") % {"units": units}
    return _("%(units)s per day") % {"units": units}


def _status_text(status: str) -> str:
    labels = {"active": _("Active"), "revoked": _("Revoked"), "expired": _("Expired")}
    return labels.get(status, status)


def _row(key: KeyView, catalogue: Catalogue, locale: str) -> dict[str, Any]:
    asset = catalogue.asset(key.asset)
    babel = i18n.babel_name(locale)
    return {
        "key": key,
        "asset": asset.name.get(locale) if asset is not None else key.asset,
        "cap": _cap_text(key.cap_units, key.cap_period, locale),
        "this_period": format_decimal(key.used_this_period, locale=babel),
        "total": format_decimal(key.used_units, locale=babel),
        "calls": format_decimal(key.calls, locale=babel),
        "last_used": _when(key.last_used_at, locale),
        "expires": _last_day(key.expires_at, locale),
        "status": _status_text(key.status),
    }


async def key_section(
    db: AsyncSession,
    user: User,
    catalogue: Catalogue,
    locale: str,
    *,
    new_key: CreatedKey | None = None,
    errors: dict[str, str] | None = None,
    form: FormValues | None = None,
) -> dict[str, Any]:
    """The section's template context (``api_keys``), used by the account page and the fragments."""
    keys = await run(db, list_keys, user.id)
    return {
        "rows": [_row(key, catalogue, locale) for key in keys],
        "assets": [(a.id, a.name.get(locale)) for a in catalogue.assets],
        "new_key": new_key,
        "errors": errors or {},
        "form": form or FormValues(asset=catalogue.assets[0].id if catalogue.assets else ""),
        "name_max": NAME_MAX,
        "cap_max": MAX_COST,
    }


def take_new_key(request: Request[Any, Any, Any], user: User) -> CreatedKey | None:
    """The key made just before the redirect, removed from the session so it is shown once."""
    session = request.scope.get("session")
    if not isinstance(session, dict) or SESSION_NEW_KEY not in session:
        return None
    shown = session.pop(SESSION_NEW_KEY)
    if not isinstance(shown, dict) or shown.get("user_id") != user.id:
        return None
    made_at = shown.get("made_at")
    if not isinstance(made_at, int) or not 0 <= time.time() - made_at <= NEW_KEY_SHOWN_FOR:
        return None
    try:
        return CreatedKey(
            id=int(shown["id"]),
            secret=str(shown["secret"]),
            prefix=str(shown["prefix"]),
            name=str(shown["name"]),
            asset=str(shown["asset"]),
            cap_units=None,
            cap_period=None,
            expires_at=None,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _field_error(error: KeyInputError) -> tuple[str, str]:
    if error.field == "name":
        return "name", _("Give the key a name of 1 to %(max)s characters.") % {"max": NAME_MAX}
    if error.field == "asset":
        return "asset", _("Choose one of the listed balances.")
    if error.field in ("cap", "cap_period"):
        return "cap", _("A cap is a whole number of units from 1 to %(max)s, per day or per month.") % {
            "max": format_decimal(MAX_COST, locale=i18n.babel_name())
        }
    return "expires", _("The last day must be a date, today or later.")


async def _read_form(request: Request[Any, Any, Any]) -> FormValues:
    values = await form_texts(request, *FormValues.__slots__)
    return FormValues(**{**values, "cap_period": values["cap_period"] or CapPeriod.DAY.value})


def _parse(values: FormValues, catalogue: Catalogue) -> dict[str, Any]:
    """The service's arguments from the form; raises ``KeyInputError`` for what cannot be one."""
    if catalogue.asset(values.asset) is None:
        raise KeyInputError("asset", "unknown")
    cap: int | None = None
    period: str | None = None
    if values.cap:
        if not _DIGITS.fullmatch(values.cap):
            raise KeyInputError("cap", "range")
        cap, period = int(values.cap), values.cap_period
    expires_on: date | None = None
    if values.expires:
        try:
            expires_on = date.fromisoformat(values.expires)
        except ValueError:
            raise KeyInputError("expires", "format") from None
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", values.expires):
            raise KeyInputError("expires", "format")
    return {
        "asset": values.asset,
        "name": values.name,
        "cap_units": cap,
        "cap_period": period,
        "expires_on": expires_on,
    }


NO_STORE: Final = {"cache-control": "no-store"}
"""On every answer that may carry a new key: no cache keeps a copy of it."""


def _section(context: dict[str, Any]) -> HTMXTemplate:
    return HTMXTemplate(template_name=SECTION_TEMPLATE, context={"api_keys": context}, headers=NO_STORE)


@post("/account/keys", name="buyer_keys:create", request_class=HTMXRequest)
async def create(
    request: HTMXRequest, db_session: AsyncSession, catalogue: CatalogueHolder, user: User
) -> Template | Redirect:
    """Make a key; the full key is answered once (fragment) or carried once over the redirect."""
    live = catalogue.catalogue
    locale = i18n.current_locale()
    values = await _read_form(request)
    try:
        made = await run(db_session, create_key, user_id=user.id, **_parse(values, live))
    except KeyInputError as error:
        field, message = _field_error(error)
        context = await key_section(db_session, user, live, locale, errors={field: message}, form=values)
        if request.htmx:
            # htmx swaps only 2xx answers: the fragment carries the error to the form.
            return _section(context)
        return Template(
            template_name="buyer_keys/form_page.html",
            context={"api_keys": context, "current_user": user},
            status_code=HTTP_400_BAD_REQUEST,
        )
    if request.htmx:
        return _section(await key_section(db_session, user, live, locale, new_key=made))
    request.session[SESSION_NEW_KEY] = {
        "user_id": user.id,
        "id": made.id,
        "secret": made.secret,
        "prefix": made.prefix,
        "name": made.name,
        "asset": made.asset,
        "made_at": int(time.time()),
    }
    return Redirect(path="/account#api-keys", status_code=HTTP_303_SEE_OTHER)


@post("/account/keys/{key_id:int}/revoke", name="buyer_keys:revoke", request_class=HTMXRequest)
async def revoke(
    request: HTMXRequest,
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    user: User,
    key_id: RowId,
) -> Template | Redirect:
    """Revoke one of the buyer's own keys; anyone else's id is a 404 (as if it did not exist)."""
    try:
        await run(db_session, revoke_key, user_id=user.id, key_id=key_id)
    except KeyNotFound:
        raise NotFoundException("no such key") from None
    if request.htmx:
        return _section(await key_section(db_session, user, catalogue.catalogue, i18n.current_locale()))
    flash(request, _("The key was revoked: calls with it are refused from now on."), category="success")
    return Redirect(path="/account#api-keys", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [create, revoke]
"""Listed with the account page's routes (app/accounts/account_page.py)."""
