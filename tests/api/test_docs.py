"""``/api/openapi.json`` and ``/api/docs``: the host API only, every asset served by the shop itself."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from app.web.factory import create_app
from tests.api.support import api_client
from tests.support.servers import serve_in_thread


def test_the_schema_lists_the_api_and_nothing_else(sqlite_api_settings: Settings) -> None:
    with api_client(sqlite_api_settings) as client:
        response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) == {
        "/api/v1/customers",
        "/api/v1/customers/{external_id}",
        "/api/v1/customers/{external_id}/sign-in-links",
        "/api/v1/customers/{external_id}/debits",
        "/api/v1/customers/{external_id}/holds",
        "/api/v1/customers/{external_id}/grants",
        "/api/v1/customers/{external_id}/entries",
        "/api/v1/customers/{external_id}/lots",
        "/api/v1/holds/{hold_id}",
        "/api/v1/holds/{hold_id}/capture",
        "/api/v1/holds/{hold_id}/release",
        "/api/v1/keys/verify",
    }
    debit = schema["paths"]["/api/v1/customers/{external_id}/debits"]["post"]
    assert {"201", "402", "404", "409", "422"} <= set(debit["responses"])
    assert "requestBody" in debit
    put = schema["paths"]["/api/v1/customers/{external_id}"]["put"]
    assert {"200", "201", "401", "403", "409", "413", "415", "422", "429"} <= set(put["responses"])
    assert "application/problem+json" in put["responses"]["409"]["content"]
    assert schema["components"]["securitySchemes"]["ServerKey"]["scheme"] == "bearer"
    post = schema["paths"]["/api/v1/customers/{external_id}/sign-in-links"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])


def test_the_docs_page_uses_local_assets_only(sqlite_api_settings: Settings) -> None:
    with api_client(sqlite_api_settings) as client:
        page = client.get("/api/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "content-security-policy" in page.headers
        html = page.text
        assert not re.search(r"(https?:)?//[a-z0-9]", html, re.I), html
        assert "<script>" not in html  # no inline script: the CSP allows none
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert len(assets) == 3
        for asset in assets:
            assert asset.startswith("/static/api-docs/")
            assert client.get(asset).status_code == 200, asset
        assert client.get("/static/api-docs/swagger-ui-5.35.0/LICENSE").status_code == 200


@pytest.mark.browser
def test_the_docs_render_in_a_browser_under_the_csp(sqlite_api_settings: Settings, page: Any) -> None:
    """The ``page`` fixture fails the test on any CSP violation; no request leaves the shop."""
    app = create_app(sqlite_api_settings)
    with serve_in_thread(app) as base:
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base) else None)
        page.goto(base + "/api/docs")
        page.wait_for_selector("text=Create or update a customer", timeout=20_000)
        assert page.locator(".opblock").count() >= 4
        page.locator("text=Create or update a customer").first.click()
        page.wait_for_selector("text=email_taken", timeout=10_000)
    assert outside == []


def test_the_docs_router_answers_problems_for_unknown_paths(sqlite_api_settings: Settings) -> None:
    with TestClient(create_app(sqlite_api_settings)) as client:
        response = client.get("/api/whatever")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
