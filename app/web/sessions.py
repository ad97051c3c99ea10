"""Server-side sessions for signed-in visitors only, whose id changes at sign-in (no fixation).

A visitor who is not signed in gets no row: 500 anonymous ``POST /sign-out`` used to leave 500
rows for 14 days. CSRF and the language live in cookies already; the only thing an anonymous
visitor's session held was a flash message ("You have signed out."), which now travels in a
short-lived signed cookie instead. Expired rows are purged when sessions are written.

A signed-in session's row is written only when the session changed, or when it was last
written more than :data:`RENEW_AFTER` ago, so the 14-day expiry still slides with use (to the
day). Litestar's backend writes it on every response, and a write takes SQLite's write lock:
every signed-in page view waited behind the webhook writer's batches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any, Final

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from advanced_alchemy.extensions.litestar.store import SQLAlchemyStore
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.types import Empty, Message, ScopeSession
from sqlalchemy import delete

from app.web.raw import FLASH_COOKIE, live_session_id

ROTATE_KEY = "_rotate_session"
NEW_ID_KEY = "_rotated_session_id"
LOADED_KEY = "_session_row_loaded"
"""Request state: the stored session's serialised form as read (None: no row), to tell whether it changed."""
SAVED_AT: Final = "_saved_at"
"""Session key: when the row was last written (Unix seconds)."""
RENEW_AFTER: Final = 24 * 3600
SIGNED_IN_KEY: Final = "user_id"
"""The session key that makes a visitor signed in; only such sessions are stored."""
FLASH_KEY: Final = "_messages"
"""Where Litestar's flash plugin keeps messages in the session."""
FLASH_MAX_AGE: Final = 300
PURGE_EVERY: Final = 60.0


def rotate_session(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Ask for a fresh session id when this response is sent; the old one is deleted."""
    connection.scope.setdefault("state", {})[ROTATE_KEY] = True


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]


def _secret(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return str(connection.scope["app"].state["settings"].secret_key)


def flash_cookie_value(secret: str, messages: list[Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(messages, separators=(",", ":")).encode()).decode()
    return f"{payload}.{_sign(secret, payload)}"


def read_flash_cookie(secret: str, value: str | None) -> list[dict[str, Any]]:
    """The messages of a flash cookie we signed; anything else is ignored."""
    payload, _, signature = (value or "").partition(".")
    # compare_digest raises on non-ASCII text: such a cookie is simply not ours.
    if not payload or not signature.isascii() or not hmac.compare_digest(signature, _sign(secret, payload)):
        return []
    try:
        messages = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return []
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


class RotatingSessionBackend(ServerSideSessionBackend):
    """Stores signed-in sessions like Litestar's backend, honours ``rotate_session``, and keeps
    a signed-out visitor's flash messages in a cookie instead of a row."""

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated = connection.scope.get("state", {}).get(NEW_ID_KEY)
        return str(rotated) if rotated else super().get_session_id(connection)

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        connection.scope.setdefault("state", {})[LOADED_KEY] = self.serialize_data(data) if data else None
        carried = read_flash_cookie(_secret(connection), connection.cookies.get(FLASH_COOKIE))
        if carried:
            data.setdefault(FLASH_KEY, []).extend(carried)
        return data

    def _unchanged(self, session: dict[str, Any], connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        """The row in the store already says this, and was written recently enough."""
        loaded = connection.scope.get("state", {}).get(LOADED_KEY)
        saved_at = session.get(SAVED_AT)
        recent = isinstance(saved_at, int | float) and time.time() - saved_at < RENEW_AFTER
        return recent and loaded is not None and loaded == self.serialize_data(session)

    def _cookie(self, key: str, value: str, **overrides: Any) -> str:
        params: dict[str, Any] = {
            "path": self.config.path,
            "domain": self.config.domain,
            "secure": self.config.secure,
            "httponly": self.config.httponly,
            "samesite": self.config.samesite,
            "max_age": self.config.max_age,
            **overrides,
        }
        return Cookie(key=key, value=value, **params).to_header(header="")

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        state = connection.scope.setdefault("state", {})
        incoming = live_session_id(connection.cookies.get(self.config.key))
        rotate = bool(state.pop(ROTATE_KEY, False))
        session = scope_session if isinstance(scope_session, dict) else {}
        headers = MutableScopeHeaders.from_message(message)
        messages = session.get(FLASH_KEY) if SIGNED_IN_KEY not in session else None
        if messages:
            value = flash_cookie_value(_secret(connection), messages)
            headers.add("Set-Cookie", self._cookie(FLASH_COOKIE, value, max_age=FLASH_MAX_AGE))
        elif FLASH_COOKIE in connection.cookies:
            headers.add("Set-Cookie", self._cookie(FLASH_COOKIE, "", max_age=0, expires=0))
        if SIGNED_IN_KEY in session:
            if rotate:
                if incoming is not None:
                    await self.delete(incoming, store=self.config.get_store_from_app(connection.scope["app"]))
                state[NEW_ID_KEY] = self.generate_session_id()
            elif incoming is not None and self._unchanged(session, connection):
                return  # the row and the browser's cookie stand as they are
            session[SAVED_AT] = int(time.time())
            await super().store_in_message(scope_session, message, connection)
            return
        # Not signed in: no row. One left from a signed-in session (sign-out, a deleted account) goes.
        if incoming is not None and state.pop(LOADED_KEY, False):
            await self.delete(incoming, store=self.config.get_store_from_app(connection.scope["app"]))
        if incoming is not None and scope_session is Empty:
            headers.add("Set-Cookie", self._cookie(self.config.key, "null", max_age=0, expires=0))
        elif incoming is not None and rotate:
            # The old id is never honoured again; the new one names no row until someone signs in.
            headers.add("Set-Cookie", self._cookie(self.config.key, self.generate_session_id()))


class RotatingSessionConfig(ServerSideSessionConfig):
    """Litestar's server-side session config with the rotating backend."""

    _backend_class = RotatingSessionBackend


class PurgingSessionStore(SQLAlchemyStore[SQLAlchemyAsyncConfig]):
    """The database session store, deleting expired rows at most once a minute per process when
    a session is written (unlike Redis, the database never expires a row by itself)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_purge = 0.0

    async def set(self, key: str, value: str | bytes, expires_in: int | Any | None = None) -> None:
        await super().set(key, value, expires_in)
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY
            await self.delete_expired()

    async def delete_expired(self) -> None:
        model = self._model
        async with self._config.get_session() as session, session.begin():
            await session.execute(
                delete(model).where(model.namespace == self.namespace, model.expires_at < datetime.now(UTC))
            )


def session_store(alchemy: SQLAlchemyAsyncConfig, model: Any) -> Store:
    return PurgingSessionStore(config=alchemy, model=model, namespace="sessions")
