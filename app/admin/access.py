"""Who may reach ``/admin``: signed-in users whose ``is_admin`` is set (``storefront users create-admin``).

The guard sits on the admin router, so every handler under it is covered whether or not its
author remembered. The flag is read from the database on every request (not kept in the
session), so taking it away locks the person out at their next click. The row is loaded with
the request's own session and kept on the request, so the handler's ``current_user`` is free.
"""

from __future__ import annotations

from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from app.accounts.auth import SignInRequired, current_user, here, require_user
from app.accounts.models import User

__all__ = ("admin_guard", "admin_user", "alchemy_config", "provide_admin")


def alchemy_config(connection: ASGIConnection[Any, Any, Any, Any]) -> SQLAlchemyAsyncConfig:
    """The app's SQLAlchemy config (its engine and the request's session)."""
    config = connection.app.plugins.get(SQLAlchemyPlugin).config[0]
    if not isinstance(config, SQLAlchemyAsyncConfig):
        raise TypeError("the admin console needs the async SQLAlchemy config")
    return config


async def admin_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """The signed-in admin (the session must have a user: ``require_user`` ran); 403 for anyone else."""
    db = alchemy_config(connection).provide_session(connection.app.state, connection.scope)
    user = await current_user(connection, db)  # type: ignore[arg-type]  # reads only scope and session
    if user is None:  # the account is gone since the session was made
        raise SignInRequired(here(connection))
    if not user.is_admin:
        raise PermissionDeniedException(detail="admins only")
    return user


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard on the admin router: a 303 to sign-in (back to here) for a visitor, 403 for a non-admin."""
    require_user(connection, handler)
    await admin_user(connection)


async def provide_admin(request: Request[Any, Any, Any]) -> User:
    """Dependency ``admin``: the admin the guard let in (already loaded, no second query)."""
    return await admin_user(request)
