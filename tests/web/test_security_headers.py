"""Every response carries the security headers, the raw ASGI fast paths' and unmatched paths' too;
``/metrics`` and the health detail need the operators' token."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from app.web.factory import create_app
from app.web.security import content_security_policy
from tests.support.shop import run_shop, wait_for
from tests.web.route_table import asgi_mounts, endpoints

TOKEN = "metrics-token-for-tests"


def _assert_secure(response: Any, *, production: bool = False) -> None:
    where = f"{response.request.method} {response.request.url} → {response.status_code}"
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, where
    assert "script-src 'self'" in csp, where
    assert "unsafe-inline" not in csp, where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "strict-origin-when-cross-origin", where
    assert ("strict-transport-security" in response.headers) is production, where


def _paths(client: TestClient[Any]) -> list[tuple[str, str]]:
    app = client.app
    assert not isinstance(app, type)
    wanted = [(e.method, e.fill()) for e in endpoints(app) if e.method in ("GET", "HEAD", "POST", "OPTIONS")]
    wanted += [("GET", mount + "/") for mount in asgi_mounts(app)]
    wanted += [
        ("GET", "/"),  # anonymous: the pricing fast path
        ("GET", "/static/css/site.css"),  # the in-memory static handler
        ("GET", "/static/nope.css"),
        ("GET", "/no/such/page"),  # answered before the middleware stack
        ("GET", "/sandbox/c/pay/cs_test_nope"),
    ]
    return wanted


def test_every_route_sends_the_security_headers(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        for method, path in _paths(client):
            _assert_secure(client.request(method, path, follow_redirects=False))


def test_production_adds_hsts_and_hides_metrics_without_a_token(sqlite_settings: Settings) -> None:
    production = replace(sqlite_settings, env="production", stripe_secret_key="sk_test_notsandbox")
    with TestClient(create_app(production)) as client:
        page = client.get("/")
        _assert_secure(page, production=True)
        _assert_secure(client.get("/static/css/site.css"), production=True)
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz/detail").status_code == 404
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
    assert "sha256-" not in content_security_policy(production), "no sandbox mounted, no style hash"


def test_metrics_and_health_detail_require_the_bearer_token(sqlite_settings: Settings) -> None:
    with TestClient(create_app(replace(sqlite_settings, metrics_token=TOKEN))) as client:
        for path in ("/metrics", "/healthz/detail"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401
            assert client.get(path, headers={"authorization": f"Basic {TOKEN}"}).status_code == 401
            good = client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
            assert good.status_code == 200, path
        detail = client.get("/healthz/detail", headers={"authorization": f"Bearer {TOKEN}"}).json()
        assert detail["catalogue"]["valid"] is True
        assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/healthz/detail", "/metrics"])
def test_development_without_a_token_stays_open(sqlite_settings: Settings, path: str) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        assert client.get(path).status_code == 200


def test_order_status_fast_path_sends_the_security_headers(sqlite_settings: Settings, tmp_path: Path) -> None:
    """A final fragment polled again within seconds is answered from memory by the raw fast path."""
    with run_shop(tmp_path, sqlite_settings.database_url) as shop:
        buyer = shop.buyer().sign_up()
        sid = buyer.start("coins-100")
        page = buyer.client.get("/checkout/success", params={"session_id": sid})
        _assert_secure(page)
        url = re.search(r'hx-get="([^"]+)"', page.text)
        assert url is not None
        assert shop.pay(sid)["status"] == "succeeded"
        shop.flush()
        poll = url.group(1).replace("&amp;", "&")
        wait_for(lambda: buyer.client.get(poll).status_code == 286)
        again = buyer.client.get(poll)
        assert again.status_code == 286
        _assert_secure(again)
