"""Server-side sessions whose id changes at sign-in (no session fixation)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.types import Empty, Message, ScopeSession

from app.web.raw import live_session_id

ROTATE_KEY = "_rotate_session"
NEW_ID_KEY = "_rotated_session_id"


def rotate_session(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Ask for a fresh session id when this response is sent; the old one is deleted."""
    connection.scope.setdefault("state", {})[ROTATE_KEY] = True


class RotatingSessionBackend(ServerSideSessionBackend):
    """Stores sessions like Litestar's backend, but honours ``rotate_session``."""

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated = connection.scope.get("state", {}).get(NEW_ID_KEY)
        return str(rotated) if rotated else super().get_session_id(connection)

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        state = connection.scope.setdefault("state", {})
        incoming = live_session_id(connection.cookies.get(self.config.key))
        if not scope_session and scope_session is not Empty and incoming is None:
            # An anonymous visitor with nothing to remember: no row, no cookie.
            return
        if state.pop(ROTATE_KEY, False) and scope_session is not Empty:
            if incoming is not None:
                await self.delete(incoming, store=self.config.get_store_from_app(connection.scope["app"]))
            state[NEW_ID_KEY] = self.generate_session_id()
        await super().store_in_message(scope_session, message, connection)


class RotatingSessionConfig(ServerSideSessionConfig):
    """Litestar's server-side session config with the rotating backend."""

    _backend_class = RotatingSessionBackend
