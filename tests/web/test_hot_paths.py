"""The hot paths (app/web/hot_paths.py): answered ahead of the middleware stack, yet with the
security headers and a request id, and only for the exact routes registered."""

from __future__ import annotations

from dataclasses import replace

import pytest
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from app.settings import Settings
from app.web.factory import create_app
from app.web.hot_paths import HotRoute
from tests.webhooks.factories import event, signed


async def _never(*_: object) -> None:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("route", "method", "path", "expected"),
    [
        (HotRoute("POST", "/webhooks/stripe", _never), "POST", "/webhooks/stripe", True),
        (HotRoute("POST", "/webhooks/stripe", _never), "GET", "/webhooks/stripe", False),
        (HotRoute("POST", "/webhooks/stripe", _never), "POST", "/webhooks/stripe/", False),
        (HotRoute("GET", "/api/v1/customers/", _never, ""), "GET", "/api/v1/customers/c1", True),
        (HotRoute("GET", "/api/v1/customers/", _never, ""), "GET", "/api/v1/customers/", False),
        (HotRoute("GET", "/api/v1/customers/", _never, ""), "GET", "/api/v1/customers/c1/lots", False),
        (
            HotRoute("POST", "/api/v1/customers/", _never, "/debits"),
            "POST",
            "/api/v1/customers/x/debits",
            True,
        ),
        (
            HotRoute("POST", "/api/v1/customers/", _never, "/debits"),
            "POST",
            "/api/v1/customers//debits",
            False,
        ),
        (
            HotRoute("POST", "/api/v1/customers/", _never, "/debits"),
            "POST",
            "/api/v1/customers/a/b/debits",
            False,
        ),
    ],
)
def test_routes_match_only_their_method_and_path_shape(
    route: HotRoute, method: str, path: str, expected: bool
) -> None:
    assert route.matches(method, path) is expected


def _requests_seen_by_prometheus(path: str) -> float:
    """Litestar's request metrics count only what passes its middleware."""
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name.endswith("requests_total") and sample.labels.get("path") == path:
                total += sample.value
    return total


def test_a_webhook_is_answered_ahead_of_the_stack_with_headers_and_a_request_id(
    sqlite_settings: Settings,
) -> None:
    settings = replace(sqlite_settings, stripe_api_base="http://127.0.0.1:9")
    body, headers = signed(
        event("product.created", {"id": "prod_hot", "object": "product"}), settings.stripe_webhook_secrets[0]
    )
    answered = REGISTRY.get_sample_value("storefront_webhook_answered_total", {"status": "200"}) or 0.0
    before = _requests_seen_by_prometheus("/webhooks/stripe")
    with TestClient(create_app(settings)) as client:
        response = client.post("/webhooks/stripe", content=body, headers={**headers, "X-Request-ID": "abc"})
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == "abc"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        fresh = client.post("/webhooks/stripe", content=body, headers=headers)
        assert len(fresh.headers["x-request-id"]) == 16
        # Other methods still go through Litestar's route.
        assert client.get("/webhooks/stripe").status_code == 405
    assert (
        REGISTRY.get_sample_value("storefront_webhook_answered_total", {"status": "200"}) or 0.0
    ) == answered + 2
    assert _requests_seen_by_prometheus("/webhooks/stripe") == before + 1  # the GET only
