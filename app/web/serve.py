"""Production serving: migrate once, then several server workers with no reload and no debug.

Granian is the default: on the 2-core bench machine it serves the cached pricing
page much faster than uvicorn (uvloop + httptools) with the same two workers
(see README, "Performance").  ``STOREFRONT_SERVER=uvicorn`` switches back.
"""

from __future__ import annotations

import os

import structlog

from app.db.migrate import upgrade
from app.settings import get_settings

SERVERS = ("granian", "uvicorn")


def serve(*, host: str, port: int, workers: int, migrate: bool = True) -> None:
    """Run ``app.asgi:app`` in ``workers`` processes; each builds the app with ``create_app()``."""
    settings = get_settings()
    if migrate:
        upgrade(settings)  # once, here, so workers never race to migrate
    os.environ.pop("STOREFRONT_DEBUG", None)
    server = os.environ.get("STOREFRONT_SERVER", "granian").strip().lower() or "granian"
    if server not in SERVERS:
        raise SystemExit(f"STOREFRONT_SERVER must be one of {', '.join(SERVERS)}, not {server!r}")
    structlog.get_logger().info(
        "serve.start", host=host, port=port, workers=workers, server=server, env=settings.env
    )
    if server == "granian":
        _granian(host, port, workers)
    else:
        _uvicorn(host, port, workers)


def _granian(host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops

    Granian(
        "app.asgi:app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,  # behind a TLS-terminating proxy; HTTP/1.1 only skips protocol sniffing
        websockets=False,
        log_access=False,
        respawn_failed_workers=True,
    ).serve()


def _uvicorn(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        proxy_headers=False,  # the client address comes from STOREFRONT_TRUSTED_PROXIES (accounts/limits.py)
        server_header=False,
        lifespan="on",
    )
