"""Forgotten passwords: an emailed single-use, time-limited link that sets a new one.

``POST /forgot-password`` answers the same page whether or not the email has an account (and
whether or not it has a password: a host's customer, who signs in through the host's links,
gets nothing), and is rate limited per client address with the sign-in form's counter and per
email address. For an account, a token (app/accounts/tokens.py) and its email are written in
the request's transaction (app/mail/outbox.py).

The link opens a form (``GET`` spends nothing: mail scanners fetch links); its ``POST`` checks
the new password, spends the token with one conditional UPDATE, sets the password, spends the
account's other reset links and raises the account's ``session_epoch``, which signs every
other session out (app/accounts/auth.py). This browser is signed in afresh.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Request, get, post
from litestar.params import Parameter
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import tokens
from app.accounts.auth import sign_in_session
from app.accounts.limits import clear_account, limit_by_address, limiter_of, scoped_account_key
from app.accounts.models import User
from app.accounts.service import email_problem, hash_password, normalise_email, password_problem
from app.db.sql import SqlConnection, run
from app.i18n import gettext as _
from app.mail.outbox import enqueue
from app.settings import Settings
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES",)

UNUSABLE_PREFIX: Final = "!"
"""A password hash starting with this never verifies (host customers: app/api/customers.py)."""
EMAIL_LIMIT: Final = 3
EMAIL_WINDOW: Final = 3600
"""Three reset emails an hour per address asked for, from anywhere: no mailbox flooding."""
_STATUS: Final = {"valid": 200, "spent": 410, "unknown": 404}

Token = Annotated[str, Parameter(max_length=100)]


def _forgot(
    settings: Settings, *, email: str = "", error: str | None = None, sent: bool = False, status: int = 200
) -> Template:
    return Template(
        template_name="accounts/forgot_password.html",
        context={
            "email": email,
            "error": error,
            "sent": sent,
            "minutes": settings.password_reset_seconds // 60,
        },
        status_code=status,
    )


def _reset(token: str, state: str, *, error: str | None = None, status: int | None = None) -> Template:
    return Template(
        template_name="accounts/reset_password.html",
        context={"token": token, "state": state, "error": error},
        status_code=status or _STATUS[state],
    )


@get("/forgot-password", name="forgot_password", opt={READ_ONLY_OPT: True})
async def forgot_page(settings: Settings) -> Template:
    return _forgot(settings)


def _request_reset(conn: SqlConnection, email: str, ttl: int) -> None:
    row = conn.execute(select(User.id, User.password_hash).where(User.email == email)).first()
    if row is None or row[1].startswith(UNUSABLE_PREFIX):
        return
    token = tokens.issue(conn, user_id=row[0], purpose="reset", ttl=ttl)
    enqueue(conn, "password_reset", user_id=row[0], data={"token": token}, secret=True)


@post("/forgot-password", name="forgot_password:submit", guards=[limit_by_address])
async def forgot(request: Request[Any, Any, Any], db_session: AsyncSession, settings: Settings) -> Template:
    """The same answer for every well-formed address; only an account's gets an email."""
    form = await request.form()
    raw = form.get("email")
    email = normalise_email(raw if isinstance(raw, str) else "")
    problem = email_problem(email)
    if problem:
        return _forgot(settings, email=email, error=problem, status=HTTP_400_BAD_REQUEST)
    await limiter_of(request).hit(scoped_account_key("reset", email), EMAIL_LIMIT, EMAIL_WINDOW)
    await run(db_session, _request_reset, email, settings.password_reset_seconds)
    return _forgot(settings, email=email, sent=True)


@get("/reset-password/{token:str}", name="reset_password", opt={READ_ONLY_OPT: True})
async def reset_page(token: Token, db_session: AsyncSession) -> Template:
    state, _user = await run(db_session, tokens.peek, token, "reset")
    return _reset(token, state)


@post("/reset-password/{token:str}", name="reset_password:submit", guards=[limit_by_address])
async def reset(
    token: Token, request: Request[Any, Any, Any], db_session: AsyncSession
) -> Template | Redirect:
    """Check the new password first (a weak one spends nothing), then spend the link and set it."""
    state, user_id = await run(db_session, tokens.peek, token, "reset")
    user = await db_session.get(User, user_id) if state == "valid" and user_id is not None else None
    if user is None:
        return _reset(token, state if state != "valid" else "unknown")
    form = await request.form()
    raw = form.get("password")
    password = raw if isinstance(raw, str) else ""
    problem = password_problem(password, user.email)
    if problem:
        return _reset(token, "valid", error=problem, status=HTTP_400_BAD_REQUEST)
    if await run(db_session, tokens.spend, token, "reset") != user.id:
        return _reset(token, "spent")  # a concurrent use won
    await run(db_session, tokens.revoke_all, user_id=user.id, purpose="reset")
    user.password_hash = await hash_password(password)
    user.session_epoch = User.session_epoch + 1  # SQL: atomic, no lost update
    await db_session.flush()
    await db_session.refresh(user)
    await clear_account(request, db_session, user.email)
    sign_in_session(request, user)
    flash(
        request, _("Your password has been changed. You are signed out everywhere else."), category="success"
    )
    return Redirect(path="/account", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [forgot_page, forgot, reset_page, reset]
