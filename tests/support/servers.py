"""Real servers on free loopback ports for SDK and browser tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot own signals
        return None


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int | None = None, *, ready_path: str = "/healthz") -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread; yields its base URL once it answers."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        loop="asyncio",
        proxy_headers=False,  # as in production: the app reads X-Forwarded-For itself
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if not thread.is_alive():
            raise RuntimeError("server thread died during start-up")
        try:
            httpx.get(base + ready_path, timeout=1.0)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
