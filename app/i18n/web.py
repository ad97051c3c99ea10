"""The language switcher: ``GET /language/{code}`` remembers the choice in a cookie (and the account)."""

from __future__ import annotations

from typing import Annotated, Any

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar import Request, get
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.auth import here, safe_next, session_user_id
from app.accounts.models import User

COOKIE_MAX_AGE = 365 * 24 * 3600


def language_cookie(code: str, *, secure: bool = False) -> Cookie:
    """A year-long cookie read by the locale middleware before anything else."""
    return Cookie(
        key=i18n.COOKIE, value=code, max_age=COOKIE_MAX_AGE, path="/", samesite="lax", secure=secure
    )


@pass_context
def switcher_next(context: Context) -> str:
    """Template global: the page being shown (path and query), where the switcher comes back to."""
    request = context.get("request")
    return here(request) if request is not None else "/"


@get("/language/{code:str}", name="language", include_in_schema=False)
async def switch_language(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    code: str,
    next_path: Annotated[str | None, QueryParameter(name="next", required=False)] = None,
) -> Redirect:
    """Remember the language in a cookie, on the account too when signed in, and go back."""
    if code not in i18n.SUPPORTED:
        raise NotFoundException(detail=f"unknown language {code!r}")
    user_id = session_user_id(request)
    if user_id is not None:
        await db_session.execute(update(User).where(User.id == user_id).values(locale=code))
    settings = request.app.state.get("settings")
    secure = bool(settings and settings.is_production)
    return Redirect(
        path=safe_next(next_path, default="/"),
        status_code=HTTP_303_SEE_OTHER,
        cookies=[language_cookie(code, secure=secure)],
    )


ROUTES: list[Any] = [switch_language]
