"""A whole shop for money-path tests: the sandbox and the shop, each on its own loopback port.

The shop's port is chosen first so its ``base_url`` (Checkout's success/cancel URLs, the
sandbox's webhook endpoint) is right before either server starts. Buyers are httpx clients
carrying their own cookies; each may claim its own client address through
``X-Forwarded-For`` (the shop trusts it from 127.0.0.1, as one behind a proxy there would,
through ``trusted_proxies``) so the sign-up rate limit, which is per address, does not
throttle a test that needs many buyers.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.support.aio import run_async
from tests.support.sandbox_server import TEST_KEY, SandboxServer, start_sandbox
from tests.support.servers import free_port, serve_in_thread

PASSWORD = "correct horse battery staple"


@dataclass
class Shop:
    url: str
    settings: Settings
    sandbox: SandboxServer
    app: Any = None
    _ips: Iterator[int] = field(default_factory=lambda: iter(range(1, 60000)))

    def buyer(self, email: str | None = None, *, locale: str | None = None) -> Buyer:
        n = next(self._ips)
        ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        return Buyer(self, email or f"buyer-{secrets.token_hex(4)}@example.com", ip=ip, locale=locale)

    def session(self, session_id: str) -> dict[str, Any]:
        """The sandbox's stored Checkout Session (what Stripe would say)."""
        found: dict[str, Any] = self.sandbox.call(lambda: dict(self.sandbox.state.sessions.get(session_id)))
        return found

    def pay(self, session_id: str, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.sandbox.control("POST", f"checkout/sessions/{session_id}/pay", **body)
        return result

    def flush(self) -> None:
        self.sandbox.flush()

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Run one SQL query on the shop's database (its own short-lived engine)."""
        return run_sql(self.settings, sql, **params)

    def order(self, session_id: str) -> dict[str, Any]:
        found = self.rows("SELECT * FROM purchase_order WHERE stripe_session_id = :sid", sid=session_id)
        assert found, f"no order for {session_id}"
        return found[0]

    def reconcile(self, *, older_than: float = 0, since: int | None = None) -> Any:
        """One reconcile run against this shop's database and sandbox."""
        from app.db.config import make_engine
        from app.reconcile.service import reconcile, session_factory
        from app.stripe_gateway import StripeGateway

        async def run() -> Any:
            engine = make_engine(self.settings)
            gateway = StripeGateway(self.settings)
            try:
                return await reconcile(session_factory(engine), gateway, older_than=older_than, since=since)
            finally:
                await gateway.close()
                await engine.dispose()

        return run_async(run())


class Buyer:
    """One browser's worth of cookies talking to the shop over HTTP."""

    def __init__(self, shop: Shop, email: str, *, ip: str, locale: str | None = None) -> None:
        self.shop = shop
        self.email = email
        headers = {"X-Forwarded-For": ip, "Accept": "text/html"}
        if locale:
            headers["Accept-Language"] = locale
        self.client = httpx.Client(base_url=shop.url, headers=headers, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.client.close()

    def csrf(self) -> str:
        token = self.client.cookies.get("csrftoken")
        if not token:
            self.client.get("/sign-in")
            token = self.client.cookies.get("csrftoken")
        assert token, "no CSRF cookie from the shop"
        return str(token)

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.client.post(path, data={**data, "_csrf_token": self.csrf()}, **kwargs)

    def sign_up(self, password: str = PASSWORD) -> Buyer:
        response = self.post("/sign-up", {"email": self.email, "password": password, "next": "/account"})
        assert response.status_code == 303, (response.status_code, response.text[:500])
        return self

    def buy(self, pack: str = "coins-100", **extra: Any) -> httpx.Response:
        return self.post("/checkout", {"pack": pack, **extra})

    def start(self, pack: str = "coins-100", **extra: Any) -> str:
        """Buy and return the Checkout Session id the shop redirected to."""
        response = self.buy(pack, **extra)
        assert response.status_code == 303, (response.status_code, response.text[:500])
        return session_id_of(response.headers["location"])

    def status(self, session_id: str) -> str:
        """The order's status as the success page shows it."""
        page = self.client.get("/checkout/success", params={"session_id": session_id})
        assert page.status_code == 200, page.status_code
        found = re.search(r'data-status="([a-z_]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)

    def balances(self) -> dict[str, int]:
        page = self.client.get("/account")
        assert page.status_code == 200, page.status_code
        return {
            asset: int(units)
            for asset, units in re.findall(
                r'<tr data-asset="([^"]+)">.*?class="available" data-units="(-?\d+)"', page.text, re.S
            )
        }


def run_sql(settings: Settings, sql: str, **params: Any) -> list[dict[str, Any]]:
    from sqlalchemy import text

    from app.db.config import make_engine

    async def run() -> list[dict[str, Any]]:
        engine = make_engine(settings)
        try:
            async with engine.begin() as conn:  # committed: UPDATEs from tests stick
                result = await conn.execute(text(sql), params)
                return [dict(row._mapping) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return run_async(run())


def filed_receipt(shop: Shop, order_id: int) -> str:
    """The plain text of the receipt for ``order_id`` once the mail worker has filed it
    (development's mail: ``var/mail/*.eml``); empty until then."""
    directory = shop.settings.var_dir / "mail"
    for path in sorted(directory.glob("*.eml")) if directory.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if f"#{order_id}" in str(message["Subject"]):
            part = message.get_body(preferencelist=("plain",))
            return part.get_content() if part is not None else ""  # type: ignore[attr-defined, no-any-return]
    return ""


def session_id_of(location: str) -> str:
    """``cs_...`` from the hosted page URL (``.../c/pay/cs_...``) or a success URL."""
    parsed = urlparse(location)
    query = parse_qs(parsed.query)
    if "session_id" in query:
        return query["session_id"][0]
    return parsed.path.rstrip("/").rsplit("/", 1)[-1]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; its last value otherwise raises."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


def sandbox_config(shop_url: str, whsec: str, **overrides: Any) -> SandboxConfig:
    base = SandboxConfig(
        webhook_endpoints=[(shop_url + "/webhooks/stripe", whsec)],
        retry_time_scale=0.01,
        retry_base_delay=1.0,
        tick_interval=0.2,
        async_payment_delay=2.0,
    )
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


@contextmanager
def run_shop(
    tmp_path: Path,
    database_url: str,
    *,
    sandbox: dict[str, Any] | None = None,
    make_app: Callable[[Settings], Any] | None = None,
    **overrides: Any,
) -> Iterator[Shop]:
    """Sandbox + shop on free ports, wired to each other; the database must be migrated."""
    from app.web.factory import create_app
    from tests.conftest import make_settings

    port = free_port()
    shop_url = f"http://127.0.0.1:{port}"
    whsec = "whsec_" + secrets.token_hex(16)
    with start_sandbox(sandbox_config(shop_url, whsec, **(sandbox or {}))) as server:
        wiring: dict[str, Any] = {
            "base_url": shop_url,
            "stripe_api_base": server.url,
            "stripe_secret_key": TEST_KEY,
            "stripe_webhook_secrets": (whsec,),
            "trusted_proxies": ("127.0.0.1",),
        }
        settings = make_settings(tmp_path, database_url, **{**wiring, **overrides})
        app = (make_app or create_app)(settings)
        with serve_in_thread(app, port):
            try:
                yield Shop(url=shop_url, settings=settings, sandbox=server, app=app)
            finally:
                # Both servers wind down at once: each notices ``should_exit`` on a 0.1 s tick.
                server.server.should_exit = True


@contextmanager
def fresh_shop(tmp_path: Path, **kwargs: Any) -> Iterator[Shop]:
    """``run_shop`` on a new migrated SQLite database under ``tmp_path``, status caches cleared."""
    from app.checkout import status
    from tests.conftest import make_settings, migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    migrate(make_settings(tmp_path, url))
    status.clear_caches()
    with run_shop(tmp_path, url, **kwargs) as shop:
        yield shop
