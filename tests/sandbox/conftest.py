"""Fixtures for the Stripe sandbox tests: a real HTTP sandbox, SDK clients and a webhook receiver."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from app.sandbox import SandboxConfig
from tests.support.sandbox_server import TEST_KEY, SandboxServer, start_sandbox

WEBHOOK_SECRET = "whsec_test_sandbox_secret"


@dataclass
class Receiver:
    """A tiny webhook endpoint recording every delivery; can fail the first N requests."""

    fail_first: int = 0
    status_when_failing: int = 500
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["status"] == 200]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]


def _serve_receiver(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            with receiver.lock:
                failing = len(receiver.requests) < receiver.fail_first
                status = receiver.status_when_failing if failing else 200
                receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    server = _serve_receiver(recv)
    yield recv
    server.shutdown()
    server.server_close()


def test_config(**overrides: Any) -> SandboxConfig:
    base: dict[str, Any] = {
        "retry_time_scale": 0.01,
        "retry_base_delay": 1.0,
        "max_delivery_attempts": 5,
        "delivery_timeout": 2.0,
        "async_payment_delay": 60.0,
        "tick_interval": 0.05,
    }
    base.update(overrides)
    return SandboxConfig(**base)


test_config.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[SandboxServer]:
    with start_sandbox(test_config(webhook_endpoints=[(receiver.url, WEBHOOK_SECRET)])) as server:
        yield server


def sdk_client(base_url: str, key: str = TEST_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(
        key,
        base_addresses={"api": base_url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
        max_network_retries=0,
    )


@pytest.fixture
def client(sandbox: SandboxServer) -> stripe.StripeClient:
    return sdk_client(sandbox.url)


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[SandboxServer]:
    """One sandbox for a whole module (no webhook endpoint): tests make their own, uniquely named objects."""
    with start_sandbox(test_config()) as server:
        yield server


@pytest.fixture(scope="module")
def module_client(module_sandbox: SandboxServer) -> stripe.StripeClient:
    return sdk_client(module_sandbox.url)


def session_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "success_url": "https://shop.example/checkout/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/checkout/cancel",
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1250,
                    "product_data": {"name": "1000 coins", "description": "Coin pack"},
                },
            },
        ],
        "metadata": {"order_id": "ord_1"},
        "client_reference_id": "user_42",
    }
    params.update(overrides)
    return params


def unique() -> str:
    """A fresh tag, so tests sharing a module's sandbox never see each other's objects."""
    return uuid.uuid4().hex[:12]


def raw_get(sandbox: SandboxServer, path: str) -> dict[str, Any]:
    """GET a `/v1` path without the SDK: the JSON exactly as served, for conformance checks."""
    response = httpx.get(f"{sandbox.url}{path}", headers={"Authorization": f"Bearer {TEST_KEY}"})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def refused(call: Callable[[], Any], param: str | None, message: str) -> stripe.InvalidRequestError:
    """Assert a Stripe 400 naming `param` whose message contains `message`."""
    with pytest.raises(stripe.InvalidRequestError) as err:
        call()
    assert err.value.http_status == 400
    assert err.value.param == param
    assert message in str(err.value.user_message)
    assert err.value.error is not None
    assert err.value.error.type == "invalid_request_error"
    return err.value
