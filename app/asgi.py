"""The ASGI entry point for servers (``app.asgi:app``) and the Litestar CLI."""

from __future__ import annotations

from app.web.factory import create_app

app = create_app()
