"""The ``make dev`` configuration: no Stripe key, so the sandbox is mounted at ``/sandbox``.

The shop still reaches it over HTTP through the Stripe SDK, and its webhooks come back to
the shop's own ``/webhooks/stripe`` signed with the shared secret.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from litestar.testing import TestClient

from app.web.factory import create_app
from tests.conftest import make_settings, migrate
from tests.support.servers import free_port, serve_in_thread

PASSWORD = "correct horse battery staple"


def test_purchase_through_the_mounted_sandbox_is_credited(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, sqlite_url, base_url=base)
    assert settings.sandbox_mounted
    migrate(settings)
    with (
        serve_in_thread(create_app(settings), port) as url,
        httpx.Client(base_url=url, headers={"Accept": "text/html"}, timeout=30) as client,
    ):
        client.get("/sign-up")
        token = client.cookies["csrftoken"]
        signed = client.post(
            "/sign-up", data={"email": "dev@example.com", "password": PASSWORD, "_csrf_token": token}
        )
        assert signed.status_code == 303
        bought = client.post("/checkout", data={"pack": "coins-100", "_csrf_token": token})
        assert bought.status_code == 303
        pay_url = bought.headers["location"]
        assert pay_url.startswith(f"{base}/sandbox/c/pay/cs_test_")
        session_id = pay_url.rsplit("/", 1)[-1]

        hosted = client.get(pay_url)
        assert hosted.status_code == 200
        assert "Card number" in hosted.text
        assert re.search(r"simulat", hosted.text, re.I), "the sandbox must say it is a simulation"

        paid = client.post(
            f"/sandbox/_sandbox/checkout/sessions/{session_id}/pay",
            json={"card_number": "4242424242424242"},
            headers={"Authorization": "Bearer sk_test_sandbox"},
        )
        assert paid.status_code == 200, paid.text

        deadline = time.monotonic() + 15
        balance = ""
        while time.monotonic() < deadline:
            account = client.get("/account")
            found = re.search(
                r'<tr data-asset="coins">.*?class="available" data-units="(-?\d+)"', account.text, re.S
            )
            balance = found.group(1) if found else ""
            if balance == "100":
                break
            time.sleep(0.2)
        assert balance == "100", "the webhook from the mounted sandbox must credit the pack"


def test_production_never_mounts_the_sandbox(sqlite_url: str, tmp_path: Path) -> None:
    """Even with a sandbox key (refused at start-up from the environment, but settings can be
    built by hand): no sandbox route, so nobody can pay for a pack through its controls."""
    settings = make_settings(
        tmp_path, sqlite_url, env="production", stripe_secret_key="sk_test_sandbox_prod_mistake"
    )
    assert settings.uses_sandbox
    migrate(settings)
    with TestClient(create_app(settings)) as client:
        for path in ("/sandbox/_sandbox/clock", "/sandbox/v1/checkout/sessions", "/sandbox/c/pay/cs_test_1"):
            assert client.get(path).status_code == 404, path
        paid = client.post("/sandbox/_sandbox/checkout/sessions/cs_test_1/pay")
        assert paid.status_code in (403, 404, 405)
