"""API versions and keys as Stripe treats them: known versions only, restricted keys, publishable
keys refused with Stripe's message, and replayed idempotent answers naming their original request."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.sandbox.conftest import sdk_client, unique
from tests.support.sandbox_server import TEST_KEY, SandboxServer

PUBLISHABLE = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. "
    "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)


def test_restricted_keys_work(module_sandbox: SandboxServer) -> None:
    client = sdk_client(module_sandbox.url, "rk_test_51Restricted")
    coupon = client.v1.coupons.create(params={"percent_off": 5})
    assert client.v1.coupons.retrieve(coupon.id).id == coupon.id
    assert client.v1.events.list(params={"limit": 1}).object == "list"


@pytest.mark.parametrize("key", ["pk_test_51Publishable", "pk_live_51Publishable"])
def test_publishable_keys_get_stripes_message(module_sandbox: SandboxServer, key: str) -> None:
    with pytest.raises(stripe.AuthenticationError) as err:
        sdk_client(module_sandbox.url, key).v1.customers.list()
    assert err.value.http_status == 401
    assert err.value.user_message == PUBLISHABLE
    assert err.value.error is not None
    assert err.value.error.type == "invalid_request_error"


@pytest.mark.parametrize("key", ["rk_live_51Restricted", "sk_live_51Secret", "sk_test_", "whsec_x"])
def test_other_keys_are_invalid(module_sandbox: SandboxServer, key: str) -> None:
    with pytest.raises(stripe.AuthenticationError, match="Invalid API Key provided"):
        sdk_client(module_sandbox.url, key).v1.customers.list()


@pytest.mark.parametrize(
    "version", ["2026-10-28.endive", stripe.api_version, "2025-03-31.basil", "2024-06-20", "2020-08-27"]
)
def test_known_versions_are_answered(module_sandbox: SandboxServer, version: str) -> None:
    response = httpx.get(
        f"{module_sandbox.url}/v1/customers",
        headers={"Authorization": f"Bearer {TEST_KEY}", "Stripe-Version": version},
    )
    assert response.status_code == 200
    assert response.headers["stripe-version"] == version


@pytest.mark.parametrize(
    "version", ["2099-01-01", "2025-03-31", "2025-03-31.acacia", "2024-06-21", "yesterday", "latest"]
)
def test_unknown_versions_are_refused(module_sandbox: SandboxServer, version: str) -> None:
    client = sdk_client(module_sandbox.url)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list(options={"stripe_version": version})
    assert err.value.http_status == 400
    assert err.value.user_message == f"Invalid Stripe API version: {version}"
    assert err.value.error is not None
    assert err.value.error.type == "invalid_request_error"


def test_replays_name_the_original_request(module_sandbox: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {TEST_KEY}", "Idempotency-Key": f"raw-{unique()}"}
    body = {"email": f"{unique()}@example.com"}
    first = httpx.post(f"{module_sandbox.url}/v1/customers", data=body, headers=headers)
    assert first.status_code == 200
    assert "original-request" not in first.headers
    assert "idempotent-replayed" not in first.headers
    again = httpx.post(f"{module_sandbox.url}/v1/customers", data=body, headers=headers)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["original-request"] == first.headers["request-id"]
    assert again.headers["request-id"] != first.headers["request-id"]
    assert again.headers["idempotency-key"] == headers["Idempotency-Key"]
