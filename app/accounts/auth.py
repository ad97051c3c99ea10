"""Who is signed in: the session holds the user id; the row is loaded at most once per request.

Pages that never ask for the user (the cached pricing page) cost nothing here: the nav only
reads the session, and a visitor without a session cookie has an empty one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.models import User
from app.web.sessions import SIGNED_IN_KEY, rotate_session

SESSION_USER_ID = SIGNED_IN_KEY
SESSION_USER_EMAIL = "user_email"
SESSION_EPOCH = "epoch"
"""The account's ``session_epoch`` at sign-in; a password reset raises the account's, ending this session."""
_STATE_KEY = "_current_user"
DEFAULT_NEXT = "/account"
DEFAULT_AFTER_POST = "/"


@dataclass(frozen=True, slots=True)
class SessionUser:
    """What the layout needs to know about the visitor, read from the session without the database."""

    id: int
    email: str


def _session(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    session = connection.scope.get("session")
    return session if isinstance(session, dict) else {}


def session_user_id(connection: ASGIConnection[Any, Any, Any, Any]) -> int | None:
    value = _session(connection).get(SESSION_USER_ID)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def sign_in_session(request: Request[Any, Any, Any], user: User) -> None:
    """Put the user in a fresh session: a new id, so an id planted before sign-in is worthless."""
    request.set_session(
        {SESSION_USER_ID: user.id, SESSION_USER_EMAIL: user.email, SESSION_EPOCH: user.session_epoch or 0}
    )
    rotate_session(request)


async def current_user(request: Request[Any, Any, Any], db_session: AsyncSession) -> User | None:
    """The signed-in ``User`` or ``None``; loaded once per request and kept on ``request.state``."""
    state = request.scope.setdefault("state", {})
    if _STATE_KEY in state:
        cached: User | None = state[_STATE_KEY]
        return cached
    user_id = session_user_id(request)
    user = await db_session.get(User, user_id) if user_id is not None else None
    if user is not None and _session(request).get(SESSION_EPOCH, 0) != user.session_epoch:
        user = None  # signed in before the account's password was reset: signed out
    if user_id is not None and user is None:
        # The account is gone (or its sessions ended): forget it instead of showing a half-signed-in page.
        for key in (SESSION_USER_ID, SESSION_USER_EMAIL, SESSION_EPOCH):
            _session(request).pop(key, None)
    state[_STATE_KEY] = user
    if user is not None and user.locale in i18n.SUPPORTED and i18n.COOKIE not in request.cookies:
        # No switcher choice in this browser: the account's saved language wins over the browser's.
        i18n.set_locale(user.locale)
        state["locale"] = user.locale
    return user


async def provide_current_user(request: Request[Any, Any, Any], db_session: AsyncSession) -> User | None:
    """Dependency ``current_user``: ``User | None``."""
    return await current_user(request, db_session)


class SignInRequired(HTTPException):
    """Raised for a signed-out visitor on a page that needs an account; answered with a 303 to sign-in."""

    status_code = HTTP_303_SEE_OTHER

    def __init__(self, next_path: str) -> None:
        super().__init__(detail="sign in required")
        self.next_path = next_path


def here(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The page being shown, path and query: where sign-in and the language switcher come back to."""
    query = connection.scope.get("query_string", b"").decode("latin-1")
    return str(connection.url.path) + (f"?{query}" if query else "")


def _come_back_to(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Where sign-in returns: this page, or the pricing page for a form post (``next`` is followed
    with a GET, and ``GET /checkout`` is no page)."""
    return here(connection) if connection.scope.get("method") in ("GET", "HEAD") else DEFAULT_AFTER_POST


def sign_in_url(next_path: str) -> str:
    return "/sign-in?next=" + quote(next_path, safe="/")


def sign_in_required_handler(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    """Exception handler for ``SignInRequired`` (registered app-wide)."""
    return Redirect(path=sign_in_url(exc.next_path), status_code=HTTP_303_SEE_OTHER)


def require_user(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: a visitor without a signed-in session goes to ``/sign-in?next=<this page>`` (303)."""
    if session_user_id(connection) is None:
        raise SignInRequired(_come_back_to(connection))


async def provide_user(request: Request[Any, Any, Any], db_session: AsyncSession) -> User:
    """Dependency ``user``: the signed-in ``User``, or a 303 to sign-in when there is none."""
    user = await current_user(request, db_session)
    if user is None:
        raise SignInRequired(_come_back_to(request))
    return user


def safe_next(value: str | None, default: str = DEFAULT_NEXT) -> str:
    """Only a path on this site: one leading ``/`` (so no scheme or host), no backslash, no control chars.

    Browsers read ``/\\host`` and ``/<tab>/host`` as ``//host``, hence the last two rules.
    """
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    return value


@pass_context
def signed_in_user(context: Context) -> User | SessionUser | None:
    """Template global for the layout's nav: the loaded user if a handler asked, else the session's."""
    given = context.get("current_user")
    if given is not None:
        return given  # type: ignore[no-any-return]
    request = context.get("request")
    if request is None:
        return None
    state = request.scope.get("state", {})
    if _STATE_KEY in state:
        loaded: User | None = state[_STATE_KEY]
        return loaded
    user_id = session_user_id(request)
    if user_id is None:
        return None
    return SessionUser(id=user_id, email=str(_session(request).get(SESSION_USER_EMAIL, "")))
