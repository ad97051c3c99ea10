"""Run the Stripe sandbox on a real loopback port for tests (uvicorn in a background thread).

    with run_sandbox(SandboxConfig(...)) as base_url:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": base_url}, ...)

`start_sandbox` returns a handle with the base URL, the in-process runtime/state and `call()` to run
state coroutines on the server's loop (the state lives on that loop, not the test's).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import uvicorn

from app.sandbox import SandboxConfig, SandboxRuntime, create_sandbox_app, get_runtime

T = TypeVar("T")
TEST_KEY = "sk_test_sandbox_tests"


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class SandboxServer:
    """A sandbox served by uvicorn in a daemon thread."""

    def __init__(
        self, config: SandboxConfig, app_factory: Callable[[Any], Any] | None = None, mount_prefix: str = ""
    ) -> None:
        self.sock = free_socket()
        port = self.sock.getsockname()[1]
        self.root = f"http://127.0.0.1:{port}"
        self.url = self.root + mount_prefix
        if config.public_url == SandboxConfig().public_url:
            config = replace(config, public_url=self.url)
        self.config = config
        self.app = create_sandbox_app(config)
        served = app_factory(self.app) if app_factory else self.app
        self.runtime: SandboxRuntime = get_runtime(self.app)
        self.server = uvicorn.Server(
            uvicorn.Config(
                served,
                log_level="warning",
                lifespan="on",
                loop="asyncio",
                http="h11",
                ws="none",
                timeout_graceful_shutdown=2,
            )
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="sandbox-server")

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> SandboxServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    @property
    def state(self) -> Any:
        return self.runtime.state

    def call(self, fn: Callable[[], T]) -> T:
        """Run a sync state method on the server loop (so it never races a request)."""

        async def wrapper() -> T:
            async with self.runtime.state.lock:
                return fn()

        return self.run(wrapper())

    def run(self, coro: Awaitable[T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)  # type: ignore[arg-type]

    def flush(self, max_wait: float = 30.0) -> bool:
        return self.run(self.runtime.flush(max_wait))

    def control(self, method: str, path: str, key: str = TEST_KEY, **body: Any) -> Any:
        """Call a `/_sandbox/...` control endpoint over HTTP."""
        response = httpx.request(
            method,
            f"{self.url}/_sandbox/{path.lstrip('/')}",
            json=body or None,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()


@contextmanager
def start_sandbox(config: SandboxConfig | None = None, **kwargs: Any) -> Iterator[SandboxServer]:
    server = SandboxServer(config or SandboxConfig(), **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def run_sandbox(config: SandboxConfig | None = None) -> Iterator[str]:
    """Serve the sandbox on a free loopback port; yields its base URL (for `base_addresses["api"]`)."""
    with start_sandbox(config) as server:
        yield server.url
