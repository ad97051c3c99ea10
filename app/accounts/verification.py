"""Email verification (``STOREFRONT_VERIFY_EMAIL``): buying needs an address that answered.

What it gates is **buying** (``POST /checkout``, and the straight-to-Checkout step after
signing in from the pricing page): a purchase sends a receipt and, for a refund, a notice, and
both must reach the buyer. Browsing, signing in and the account page stay open, so a buyer can
always ask for a new link. A host's customer (``external_id`` set) is vouched for by the host
and never asked. With the setting off nothing is gated and no verification mail is sent.

The link's ``GET`` shows a Confirm button; its ``POST`` spends the token (scanners fetch links).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Final, cast

from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_200_OK, HTTP_303_SEE_OTHER, HTTP_403_FORBIDDEN
from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import tokens
from app.accounts.auth import session_user_id
from app.accounts.limits import limit_by_address, limiter_of
from app.accounts.models import User
from app.db.sql import SqlConnection, run
from app.i18n import gettext as _
from app.mail.outbox import enqueue
from app.settings import Settings
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES", "needs_verification", "send_verification", "verification_required_page")

LINK_SECONDS: Final = 7 * 24 * 3600
RESEND_LIMIT: Final = 3
RESEND_WINDOW: Final = 3600
_STATUS: Final = {"valid": 200, "spent": 410, "unknown": 404}

Token = Annotated[str, Parameter(max_length=100)]


def needs_verification(settings: Settings, user: User) -> bool:
    return settings.verify_email and user.email_verified_at is None and user.external_id is None


def send_verification(conn: SqlConnection, user_id: int) -> None:
    """A new link and its email, in the caller's transaction."""
    token = tokens.issue(conn, user_id=user_id, purpose="verify", ttl=LINK_SECONDS)
    enqueue(conn, "verify_email", user_id=user_id, data={"token": token}, secret=True)


def verification_required_page(user: User, status: int = HTTP_403_FORBIDDEN) -> Template:
    """What to do before buying (the resend button is a CSRF-checked POST); 403 where buying was refused."""
    return Template(
        template_name="accounts/verify_email.html",
        context={"state": "required", "current_user": user, "email": user.email},
        status_code=status,
    )


@get("/verify-email", name="verify_email:required")
async def required_page(user: User) -> Template:
    """Where sign-up goes instead of Checkout while the email is unconfirmed (a 303 keeps the account:
    a 4xx answer would roll the sign-up back)."""
    return verification_required_page(user, HTTP_200_OK)


def _verify(conn: SqlConnection, token: str) -> bool:
    user_id = tokens.spend(conn, token, "verify")
    if user_id is None:
        return False
    users = cast(Table, User.__table__)
    conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.email_verified_at.is_(None))
        .values(email_verified_at=int(time.time()))
    )
    return True


@get("/verify-email/{token:str}", name="verify_email", opt={READ_ONLY_OPT: True})
async def verify_page(token: Token, db_session: AsyncSession) -> Template:
    state, _user = await run(db_session, tokens.peek, token, "verify")
    return Template(
        template_name="accounts/verify_email.html",
        context={"state": state, "token": token},
        status_code=_STATUS[state],
    )


@post("/verify-email/{token:str}", name="verify_email:use", guards=[limit_by_address])
async def verify(
    token: Token, request: Request[Any, Any, Any], db_session: AsyncSession
) -> Template | Redirect:
    if not await run(db_session, _verify, token):
        state, _user = await run(db_session, tokens.peek, token, "verify")
        return Template(
            template_name="accounts/verify_email.html",
            context={"state": state if state != "valid" else "unknown", "token": token},
            status_code=_STATUS[state if state != "valid" else "unknown"],
        )
    flash(
        request, _("Thank you: your email address is confirmed. You can buy packs now."), category="success"
    )
    return Redirect(path="/", status_code=HTTP_303_SEE_OTHER)


async def limit_resends(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Resends per signed-in account, counted before the request's transaction begins.

    Counted inside the handler, the hit (on the database without Redis, its own transaction) waited
    on SQLite for the write lock the request itself held from loading the user: a 500 after the
    30 s busy timeout.
    """
    user_id = session_user_id(connection)
    if user_id is not None:
        await limiter_of(connection).hit(f"verify:user:{user_id}", RESEND_LIMIT, RESEND_WINDOW)


@post("/verify-email", name="verify_email:resend", guards=[limit_by_address, limit_resends])
async def resend(request: Request[Any, Any, Any], db_session: AsyncSession, user: User) -> Redirect:
    if user.email_verified_at is None:
        await run(db_session, send_verification, user.id)
    flash(
        request,
        _("We sent a new confirmation link to %(email)s.") % {"email": user.email},
        category="success",
    )
    return Redirect(path="/account", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [required_page, verify_page, verify, resend]
