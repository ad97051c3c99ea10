"""Server-side sessions whose id changes at sign-in (no session fixation), written only when needed.

Litestar's backend writes the session row (and re-sends its cookie) on every response. A
write takes SQLite's write lock, so every signed-in page view waited behind the webhook
writer's batches. This backend writes when the session changed, or when it was last written
more than :data:`RENEW_AFTER` ago, so the 14-day expiry still slides with use (to the day).
"""

from __future__ import annotations

import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.types import Empty, Message, ScopeSession

from app.web.raw import live_session_id

ROTATE_KEY = "_rotate_session"
NEW_ID_KEY = "_rotated_session_id"
LOADED_KEY = "_session_as_loaded"
"""Request state: the session's serialised form when it was read, to tell whether it changed."""
SAVED_AT = "_saved_at"
"""Session key: when the row was last written (Unix seconds)."""
RENEW_AFTER = 24 * 3600


def rotate_session(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Ask for a fresh session id when this response is sent; the old one is deleted."""
    connection.scope.setdefault("state", {})[ROTATE_KEY] = True


class RotatingSessionBackend(ServerSideSessionBackend):
    """Stores sessions like Litestar's backend, but honours ``rotate_session``."""

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated = connection.scope.get("state", {}).get(NEW_ID_KEY)
        return str(rotated) if rotated else super().get_session_id(connection)

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        if data:
            connection.scope.setdefault("state", {})[LOADED_KEY] = self.serialize_data(data)
        return data

    def _unchanged(
        self, scope_session: dict[str, Any], connection: ASGIConnection[Any, Any, Any, Any]
    ) -> bool:
        """The row in the store already says this, and was written recently enough."""
        loaded = connection.scope.get("state", {}).get(LOADED_KEY)
        saved_at = scope_session.get(SAVED_AT)
        recent = isinstance(saved_at, int | float) and time.time() - saved_at < RENEW_AFTER
        return recent and loaded is not None and loaded == self.serialize_data(scope_session)

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        state = connection.scope.setdefault("state", {})
        incoming = live_session_id(connection.cookies.get(self.config.key))
        if not scope_session and scope_session is not Empty and incoming is None:
            # An anonymous visitor with nothing to remember: no row, no cookie.
            return
        rotating = bool(state.pop(ROTATE_KEY, False)) and scope_session is not Empty
        if rotating:
            if incoming is not None:
                await self.delete(incoming, store=self.config.get_store_from_app(connection.scope["app"]))
            state[NEW_ID_KEY] = self.generate_session_id()
        elif (
            isinstance(scope_session, dict)
            and incoming is not None
            and self._unchanged(scope_session, connection)
        ):
            return  # the row and the browser's cookie stand as they are
        if isinstance(scope_session, dict) and scope_session:
            scope_session[SAVED_AT] = int(time.time())
        await super().store_in_message(scope_session, message, connection)


class RotatingSessionConfig(ServerSideSessionConfig):
    """Litestar's server-side session config with the rotating backend."""

    _backend_class = RotatingSessionBackend
