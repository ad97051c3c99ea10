"""Property: whatever junk arrives (params, values, paths, headers), the sandbox never answers 5xx,
and every 4xx has Stripe's error shape."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sandbox.conftest import test_config
from tests.support.sandbox_server import TEST_KEY, SandboxServer, start_sandbox

PATHS = [
    "/v1/checkout/sessions",
    "/v1/checkout/sessions/{id}",
    "/v1/checkout/sessions/{id}/line_items",
    "/v1/checkout/sessions/{id}/expire",
    "/v1/payment_intents/{id}",
    "/v1/charges/{id}",
    "/v1/refunds",
    "/v1/refunds/{id}",
    "/v1/disputes/{id}",
    "/v1/events",
    "/v1/events/{id}",
    "/v1/{id}",
    "/_sandbox/prices",
    "/_sandbox/clock/advance",
    "/_sandbox/checkout/sessions/{id}/pay",
    "/_sandbox/disputes/{id}/close",
    "/c/pay/{id}",
    "/c/pay/{id}/3ds/{id}",
]
KNOWN_KEYS = [
    "mode",
    "success_url",
    "cancel_url",
    "line_items[0][quantity]",
    "line_items[0][price_data][currency]",
    "line_items[0][price_data][unit_amount]",
    "line_items[0][price_data][product_data][name]",
    "line_items[0][price]",
    "line_items[][quantity]",
    "line_items",
    "metadata[a]",
    "metadata",
    "expand[]",
    "expand[0]",
    "expires_at",
    "limit",
    "starting_after",
    "ending_before",
    "created[gte]",
    "created",
    "type",
    "types[0]",
    "delivery_success",
    "payment_intent",
    "charge",
    "amount",
    "reason",
    "customer_details[email]",
    "payment_method_types[0]",
    "locale",
    "seconds",
    "card_number",
    "bank_account",
    "outcome",
    "currency",
    "unit_amount",
    "product_name",
    "a[b][c]",
    "[x]",
    "x]",
    "q[",
    "%",
    "",
]
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
values = st.one_of(
    text,
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        [
            "true",
            "false",
            "payment",
            "usd",
            "eur",
            "https://x.example/ok",
            "",
            "price_x",
            "cs_test_x",
            "-1",
            "0",
        ]
    ),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), text)
path_text = text.filter(lambda s: "/" not in s and "?" not in s and "#" not in s and s not in (".", ".."))


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(test_config()) as server:
        yield server


# The catalogue, customers, discounts, tax rates and payment follow-ups, with the keys they read.
RESOURCE_PATHS = [
    "/v1/products",
    "/v1/products/{id}",
    "/v1/products/search",
    "/v1/prices",
    "/v1/prices/{id}",
    "/v1/prices/search",
    "/v1/customers",
    "/v1/customers/{id}",
    "/v1/customers/search",
    "/v1/coupons",
    "/v1/coupons/{id}",
    "/v1/promotion_codes",
    "/v1/promotion_codes/{id}",
    "/v1/tax_rates",
    "/v1/tax_rates/{id}",
    "/v1/payment_intents",
    "/v1/payment_intents/search",
    "/v1/payment_intents/{id}/capture",
    "/v1/payment_intents/{id}/cancel",
    "/v1/charges",
    "/v1/charges/search",
    "/v1/refunds/{id}/cancel",
    "/v1/disputes",
    "/v1/balance_transactions/{id}",
]
RESOURCE_KEYS = [
    "query",
    "page",
    "name",
    "email",
    "address[country]",
    "metadata[k]",
    "metadata",
    "percent_off",
    "amount_off",
    "currency",
    "duration",
    "redeem_by",
    "max_redemptions",
    "coupon",
    "promotion[coupon]",
    "promotion[type]",
    "code",
    "restrictions[minimum_amount]",
    "restrictions[minimum_amount_currency]",
    "expires_at",
    "unit_amount",
    "unit_amount_decimal",
    "product",
    "product_data[name]",
    "default_price_data[currency]",
    "default_price_data[unit_amount]",
    "default_price",
    "lookup_key",
    "lookup_keys[0]",
    "ids[0]",
    "display_name",
    "inclusive",
    "percentage",
    "active",
    "amount_to_capture",
    "cancellation_reason",
    "limit",
    "starting_after",
    "created[gt]",
    "expand[0]",
    "id",
]
resource_values = st.one_of(
    values,
    st.sampled_from(
        ['email:"a@b.example"', 'name~"abc" AND created>5', "metadata['k']:'v'", "25.5", "101", "once"]
    ),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    path=st.sampled_from(PATHS),
    ident=st.one_of(path_text, st.sampled_from(["cs_test_x", "pi_1", "evt_x"])),
    pairs=st.lists(st.tuples(keys, values), max_size=8),
    key=st.sampled_from([TEST_KEY, "sk_live_x", "", "Bearer", "sk_test_" + "x" * 300]),
    json_body=st.booleans(),
)
def test_never_5xx(
    shared_sandbox: SandboxServer,
    method: str,
    path: str,
    ident: str,
    pairs: list[tuple[str, str]],
    key: str,
    json_body: bool,
) -> None:
    _probe(shared_sandbox, method, path, ident, pairs, key, json_body)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST"]),
    path=st.sampled_from(RESOURCE_PATHS),
    ident=st.one_of(path_text, st.sampled_from(["cus_x", "prod_x", "pi_1"])),
    pairs=st.lists(st.tuples(st.one_of(st.sampled_from(RESOURCE_KEYS), text), resource_values), max_size=8),
    json_body=st.booleans(),
)
def test_resources_never_5xx(
    shared_sandbox: SandboxServer,
    method: str,
    path: str,
    ident: str,
    pairs: list[tuple[str, str]],
    json_body: bool,
) -> None:
    _probe(shared_sandbox, method, path, ident, pairs, TEST_KEY, json_body)


def _probe(
    shared_sandbox: SandboxServer,
    method: str,
    path: str,
    ident: str,
    pairs: list[tuple[str, str]],
    key: str,
    json_body: bool,
) -> None:
    """Send one junk request; the answer is never 5xx, and a JSON 4xx has Stripe's error shape."""
    url = shared_sandbox.url + path.replace("{id}", quote(ident, safe="") or "x")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if json_body and method == "POST":
        response = httpx.request(method, url, json=dict(pairs), headers=headers, timeout=10)
    elif method == "GET":
        response = httpx.request(method, url, params=pairs, headers=headers, timeout=10)
    else:
        response = httpx.request(method, url, data=dict(pairs), headers=headers, timeout=10)
    assert response.status_code < 500, response.text
    if 400 <= response.status_code < 500 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        error = response.json()["error"]
        assert error["type"] in {"invalid_request_error", "idempotency_error", "card_error", "api_error"}
        assert isinstance(error["message"], str)
        assert error["message"]
