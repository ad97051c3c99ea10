"""Single-use sign-in links a host application hands its customer: the shop, already signed in.

The host asks ``POST /api/v1/customers/{external_id}/sign-in-links`` (app/api/customers.py),
which calls :func:`create_link`: a random token (256 bits from :mod:`secrets`) whose SHA-256
alone is stored, valid :attr:`Settings.sign_in_link_seconds` (5 minutes by default).

Opening the link (``GET /sign-in/link/<token>``) shows a page with one "Continue" button, a
CSRF-protected POST; only that POST uses the link. Mail clients and chat apps fetch links to
scan or preview them: a GET that signed in would burn the link before the person clicked it
(and sign the scanner in). The POST spends the link with one conditional
``UPDATE ... WHERE used_at IS NULL AND expires_at > now RETURNING``, so of two concurrent uses
at most one signs in; it is rate-limited per client address with the sign-in form's counter.
A used, expired or unknown link gets a 4xx page in the visitor's language and signs in nobody.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Final

from litestar import Request, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.auth import safe_next, sign_in_session
from app.accounts.limits import limit_by_address
from app.accounts.models import SignInLink, User
from app.db.sql import SqlConnection, run
from app.i18n.web import language_cookie
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES", "LinkState", "create_link", "link_path", "link_state", "use_link")

TOKEN_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
"""``secrets.token_urlsafe(32)``: anything else is not one of ours and is never looked up."""
PURGE_AFTER: Final = 24 * 3600
"""Links expired this long ago are deleted when a new one is made."""
_TABLE: Final[Table] = SignInLink.__table__  # type: ignore[assignment]
LINK_PATH: Final = "/sign-in/link/"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_path(token: str) -> str:
    return LINK_PATH + token


@dataclass(frozen=True, slots=True)
class NewLink:
    token: str
    expires_at: int


def create_link(
    conn: SqlConnection, *, user_id: int, next_path: str, ttl_seconds: int, now: int | None = None
) -> NewLink:
    """Store a new link's hash; the token itself goes back to the host once and is never stored."""
    now = now if now is not None else int(time.time())
    token = secrets.token_urlsafe(32)
    expires_at = now + ttl_seconds
    conn.execute(
        insert(_TABLE).values(
            token_hash=_hash(token), user_id=user_id, next_path=next_path, expires_at=expires_at
        )
    )
    conn.execute(delete(_TABLE).where(_TABLE.c.expires_at < now - PURGE_AFTER))
    return NewLink(token=token, expires_at=expires_at)


@dataclass(frozen=True, slots=True)
class Used:
    user_id: int
    next_path: str


def use_link(conn: SqlConnection, token: str, *, now: int | None = None) -> Used | None:
    """Spend the link in one conditional UPDATE; ``None`` when it is unknown, used or expired."""
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    now = now if now is not None else int(time.time())
    statement = (
        update(_TABLE)
        .where(_TABLE.c.token_hash == _hash(token), _TABLE.c.used_at.is_(None), _TABLE.c.expires_at > now)
        .values(used_at=now)
        .returning(_TABLE.c.user_id, _TABLE.c.next_path)
    )
    row = conn.execute(statement).first()
    return Used(user_id=int(row.user_id), next_path=row.next_path) if row is not None else None


LinkState = str
"""``"valid"``, ``"spent"`` (used or expired) or ``"unknown"``."""


def link_state(conn: SqlConnection, token: str, *, now: int | None = None) -> LinkState:
    """What the link's page should say, read without changing anything."""
    if not TOKEN_SHAPE.fullmatch(token):
        return "unknown"
    now = now if now is not None else int(time.time())
    row = conn.execute(
        select(_TABLE.c.used_at, _TABLE.c.expires_at).where(_TABLE.c.token_hash == _hash(token))
    ).first()
    if row is None:
        return "unknown"
    return "valid" if row.used_at is None and row.expires_at > now else "spent"


_STATUS: Final = {"valid": 200, "spent": 410, "unknown": 404}

Token = Annotated[str, Parameter(max_length=100)]


def _page(token: str, state: LinkState) -> Template:
    return Template(
        template_name="accounts/sign_in_link.html",
        context={"token": token, "state": state},
        status_code=_STATUS[state],
    )


@get("/sign-in/link/{token:str}", name="sign_in_link", opt={READ_ONLY_OPT: True})
async def sign_in_link_page(token: Token, db_session: AsyncSession) -> Template:
    """The "Continue" page; opening it (as a link scanner does) uses nothing."""
    return _page(token, await run(db_session, link_state, token))


@post("/sign-in/link/{token:str}", name="sign_in_link:use", guards=[limit_by_address])
async def use_sign_in_link(
    token: Token, request: Request[Any, Any, Any], db_session: AsyncSession
) -> Template | Redirect:
    """Spend the link and sign its customer in (a fresh session), then go to its ``next`` path."""
    used = await run(db_session, use_link, token)
    user = await db_session.get(User, used.user_id) if used is not None else None
    if used is None or user is None:
        return _page(token, await run(db_session, link_state, token))
    sign_in_session(request, user)
    cookies = []
    if i18n.COOKIE not in request.cookies and user.locale in i18n.SUPPORTED:
        cookies.append(language_cookie(user.locale))
    return Redirect(path=safe_next(used.next_path), status_code=HTTP_303_SEE_OTHER, cookies=cookies)


ROUTES: list[Any] = [sign_in_link_page, use_sign_in_link]
