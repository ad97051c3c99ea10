"""No silent parameter: every parameter of every routed operation is simulated or refused.

The walk takes each `/v1` route of the sandbox app, finds its request schema in Stripe's spec
(body properties for POST, query parameters for GET, recursing into hashes and arrays of hashes the
sandbox takes apart) plus the installed SDK's parameter names for the operation (the 2023 spec lacks
newer ones, and `POST /v1/checkout/sessions/{id}` entirely), and looks each one up in the sandbox's
table (`app.sandbox.params.OPERATIONS`):

* refused: the test sends it through the SDK and expects a 400 that names it and says the sandbox
  does not simulate it;
* simulated: `EVIDENCE` must name a test that exercises it (and whose source mentions it);
* missing from the table: a failure, because the sandbox would answer "unknown parameter" to a
  parameter Stripe accepts.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe
from litestar.routes import HTTPRoute
from stripe._request_options import RequestOptions

from app.sandbox import create_sandbox_app
from app.sandbox.forms import Array, Hash, Spec, Unsimulated
from app.sandbox.params import OPERATIONS, operation_key
from tests.sandbox.conftest import session_params
from tests.sandbox.stripe_spec import require_shared, spec
from tests.support.sandbox_server import SandboxServer

# The SDK's parameter classes per operation (stripe.params.<module>:<class>).
SDK_PARAMS = {
    "POST /v1/checkout/sessions": "checkout:SessionCreateParams",
    "GET /v1/checkout/sessions": "checkout:SessionListParams",
    "GET /v1/checkout/sessions/{id}": "checkout:SessionRetrieveParams",
    "POST /v1/checkout/sessions/{id}": "checkout:SessionModifyParams",
    "GET /v1/checkout/sessions/{id}/line_items": "checkout:SessionListLineItemsParams",
    "POST /v1/checkout/sessions/{id}/expire": "checkout:SessionExpireParams",
    "GET /v1/payment_intents/{id}": ":PaymentIntentRetrieveParams",
    "GET /v1/charges/{id}": ":ChargeRetrieveParams",
    "POST /v1/refunds": ":RefundCreateParams",
    "GET /v1/refunds/{id}": ":RefundRetrieveParams",
    "GET /v1/disputes/{id}": ":DisputeRetrieveParams",
    "GET /v1/events": ":EventListParams",
    "GET /v1/events/{id}": ":EventRetrieveParams",
    "POST /v1/coupons": ":CouponCreateParams",
    "GET /v1/coupons": ":CouponListParams",
    "GET /v1/coupons/{id}": ":CouponRetrieveParams",
    "POST /v1/coupons/{id}": ":CouponModifyParams",
    "POST /v1/promotion_codes": ":PromotionCodeCreateParams",
    "GET /v1/promotion_codes": ":PromotionCodeListParams",
    "GET /v1/promotion_codes/{id}": ":PromotionCodeRetrieveParams",
    "POST /v1/promotion_codes/{id}": ":PromotionCodeModifyParams",
    "POST /v1/customers": ":CustomerCreateParams",
    "GET /v1/customers": ":CustomerListParams",
    "GET /v1/customers/search": ":CustomerSearchParams",
    "GET /v1/customers/{id}": ":CustomerRetrieveParams",
    "POST /v1/customers/{id}": ":CustomerModifyParams",
    "DELETE /v1/customers/{id}": ":CustomerDeleteParams",
    "POST /v1/products": ":ProductCreateParams",
    "GET /v1/products": ":ProductListParams",
    "GET /v1/products/search": ":ProductSearchParams",
    "GET /v1/products/{id}": ":ProductRetrieveParams",
    "POST /v1/products/{id}": ":ProductModifyParams",
    "POST /v1/prices": ":PriceCreateParams",
    "GET /v1/prices": ":PriceListParams",
    "GET /v1/prices/search": ":PriceSearchParams",
    "GET /v1/prices/{id}": ":PriceRetrieveParams",
    "POST /v1/prices/{id}": ":PriceModifyParams",
    "POST /v1/tax_rates": ":TaxRateCreateParams",
    "GET /v1/tax_rates": ":TaxRateListParams",
    "GET /v1/tax_rates/{id}": ":TaxRateRetrieveParams",
    "POST /v1/tax_rates/{id}": ":TaxRateModifyParams",
    "POST /v1/payment_intents/{id}/capture": ":PaymentIntentCaptureParams",
    "POST /v1/payment_intents/{id}/cancel": ":PaymentIntentCancelParams",
    "GET /v1/payment_intents": ":PaymentIntentListParams",
    "GET /v1/payment_intents/search": ":PaymentIntentSearchParams",
    "GET /v1/charges": ":ChargeListParams",
    "GET /v1/charges/search": ":ChargeSearchParams",
    "GET /v1/refunds": ":RefundListParams",
    "POST /v1/refunds/{id}/cancel": ":RefundCancelParams",
    "GET /v1/disputes": ":DisputeListParams",
    "GET /v1/balance_transactions/{id}": ":BalanceTransactionRetrieveParams",
}

# The test proving each simulated parameter's effect, by operation and parameter path.
S = "POST /v1/checkout/sessions"
LI = "line_items[0]"
PD = f"{LI}[price_data]"
API = "tests.sandbox.test_sandbox_api"
PARAMS = "tests.sandbox.test_sandbox_checkout_params"
EVIDENCE: dict[str, list[str]] = {
    f"{API}:test_create_and_retrieve_session": [
        f"{S} {LI}[quantity]",
        f"{S} {PD}[currency]",
        f"{S} {PD}[unit_amount]",
        f"{S} customer_email",
        f"{S} metadata",
        f"{S} client_reference_id",
        f"{S} locale",
        f"{S} payment_method_types",
        "GET /v1/checkout/sessions/{id} expand",
    ],
    f"{API}:test_registered_price_line_items": [f"{S} {LI}[price]"],
    f"{API}:test_bad_session_params": [f"{S} mode", f"{S} success_url", f"{S} {PD}[product_data][name]"],
    f"{API}:test_expires_at_bounds": [f"{S} expires_at"],
    f"{API}:test_list_sessions_pagination_and_filters": [
        f"GET /v1/checkout/sessions {name}"
        for name in (
            "limit",
            "starting_after",
            "ending_before",
            "payment_intent",
            "status",
            "customer_details[email]",
            "created",
        )
    ],
    f"{API}:test_payment_objects_and_refunds": [
        f"{S} payment_intent_data[metadata]",
        f"{S} payment_intent_data[description]",
        *(
            f"POST /v1/refunds {name}"
            for name in ("payment_intent", "charge", "amount", "reason", "metadata")
        ),
    ],
    f"{API}:test_events_filters": [
        f"GET /v1/events {name}"
        for name in ("limit", "starting_after", "type", "types", "created", "delivery_success")
    ],
    f"{PARAMS}:test_manual_capture": [
        f"{S} payment_intent_data[capture_method]",
        "POST /v1/payment_intents/{id}/capture statement_descriptor",
    ],
    f"{PARAMS}:test_payment_intent_data_reaches_the_payment": [
        f"{S} payment_intent_data[receipt_email]",
        f"{S} payment_intent_data[statement_descriptor]",
        f"{S} payment_intent_data[statement_descriptor_suffix]",
        f"{S} {PD}[product_data][description]",
        f"{S} cancel_url",
    ],
    f"{PARAMS}:test_adjustable_quantity_bounds": [
        f"{S} {LI}[adjustable_quantity][enabled]",
        f"{S} {LI}[adjustable_quantity][minimum]",
        f"{S} {LI}[adjustable_quantity][maximum]",
    ],
    f"{PARAMS}:test_session_fields_the_page_reads": [
        f"{S} submit_type",
        f"{S} billing_address_collection",
        f"{S} ui_mode",
        f"{S} currency",
        f"{S} {PD}[unit_amount_decimal]",
        f"{S} {PD}[recurring][interval]",
        f"{S} {PD}[recurring][interval_count]",
        f"{S} expand",
    ],
    f"{PARAMS}:test_update_session_metadata": [
        "POST /v1/checkout/sessions/{id} metadata",
        "POST /v1/checkout/sessions/{id} expand",
    ],
    f"{PARAMS}:test_checkout_customers": [
        f"{S} customer",
        f"{S} customer_creation",
        f"{S} customer_update[name]",
        f"{S} customer_update[address]",
        "GET /v1/checkout/sessions customer",
        "GET /v1/payment_intents customer",
        "GET /v1/charges customer",
        "GET /v1/charges transfer_group",
        *(f"POST /v1/customers address[{f}]" for f in ("line1", "line2", "postal_code", "state")),
        *(f"POST /v1/customers shipping[address][{f}]" for f in ("line1", "line2", "postal_code", "state")),
        "POST /v1/customers description",
        "POST /v1/customers expand",
        "POST /v1/customers/{id} description",
        "POST /v1/customers/{id} expand",
        "GET /v1/customers expand",
        "GET /v1/customers/search expand",
        "GET /v1/customers/{id} expand",
    ],
    f"{PARAMS}:test_checkout_discounts": [
        f"{S} allow_promotion_codes",
        f"{S} discounts[0][coupon]",
        f"{S} discounts[0][promotion_code]",
    ],
    f"{PARAMS}:test_checkout_tax": [
        f"{S} automatic_tax[enabled]",
        f"{S} {LI}[tax_rates]",
        f"{S} {PD}[tax_behavior]",
        f"{S} {PD}[product]",
        "POST /v1/tax_rates expand",
        "POST /v1/tax_rates/{id} expand",
        "GET /v1/tax_rates expand",
        "GET /v1/tax_rates/{id} expand",
    ],
    f"{PARAMS}:test_catalog_fields_round_trip": [
        *(
            f"POST /v1/products {f}"
            for f in ("images", "shippable", "statement_descriptor", "tax_code", "unit_label")
        ),
        *(
            f"POST /v1/products/{{id}} {f}"
            for f in ("images", "shippable", "statement_descriptor", "tax_code", "unit_label")
        ),
        *(f"POST /v1/prices product_data[{f}]" for f in ("statement_descriptor", "tax_code", "unit_label")),
        "GET /v1/products shippable",
        "GET /v1/prices recurring[usage_type]",
        "GET /v1/prices recurring[meter]",
    ],
    f"{PARAMS}:test_list_and_retrieve_params": [
        "GET /v1/checkout/sessions expand",
        "GET /v1/checkout/sessions payment_link",
        "GET /v1/checkout/sessions subscription",
        "GET /v1/checkout/sessions/{id}/line_items limit",
        "GET /v1/checkout/sessions/{id}/line_items starting_after",
        "GET /v1/checkout/sessions/{id}/line_items ending_before",
        "GET /v1/checkout/sessions/{id}/line_items expand",
        "POST /v1/checkout/sessions/{id}/expire expand",
        "GET /v1/payment_intents/{id} expand",
        "GET /v1/charges/{id} expand",
        "POST /v1/refunds currency",
        "POST /v1/refunds expand",
        "GET /v1/refunds/{id} expand",
        "GET /v1/disputes/{id} expand",
        "GET /v1/events ending_before",
        "GET /v1/events expand",
        "GET /v1/events/{id} expand",
    ],
}


# Resources with a test module of their own: a parameter not in EVIDENCE must be exercised, by
# name, somewhere in the module that tests its resource.
MODULE_EVIDENCE = {
    "/v1/customers": "tests.sandbox.test_sandbox_customers",
    "/v1/coupons": "tests.sandbox.test_sandbox_discounts",
    "/v1/promotion_codes": "tests.sandbox.test_sandbox_discounts",
    "/v1/products": "tests.sandbox.test_sandbox_catalog",
    "/v1/prices": "tests.sandbox.test_sandbox_catalog",
    "/v1/tax_rates": "tests.sandbox.test_sandbox_tax",
    "/v1/payment_intents": "tests.sandbox.test_sandbox_payments",
    "/v1/charges": "tests.sandbox.test_sandbox_payments",
    "/v1/refunds": "tests.sandbox.test_sandbox_payments",
    "/v1/disputes": "tests.sandbox.test_sandbox_payments",
    "/v1/balance_transactions": "tests.sandbox.test_sandbox_payments",
}


def _leaf(key: str) -> str:
    return str(re.findall(r"[a-z_]+", key.rsplit(" ", 1)[1])[-1])


def _module_evidence(key: str) -> str | None:
    """The resource's test module if it mentions the parameter (`None` when it has none or doesn't)."""
    path = key.split(" ")[1]
    for prefix, module in MODULE_EVIDENCE.items():
        if path == prefix or path.startswith(prefix + "/"):
            source = inspect.getsource(importlib.import_module(module))
            return module if re.search(rf"\b{_leaf(key)}\b", source) else None
    return None


@dataclass(frozen=True)
class Param:
    operation: str
    path: tuple[str | int, ...]
    refused: bool
    schema: dict[str, Any] | None

    @property
    def name(self) -> str:
        head, *rest = self.path
        return str(head) + "".join(f"[{p}]" for p in rest)

    @property
    def key(self) -> str:
        return f"{self.operation} {self.name}"


def _resolve(node: dict[str, Any] | None) -> dict[str, Any] | None:
    """Follow a `$ref` and pick an `anyOf`'s object or array branch."""
    while node is not None:
        if "$ref" in node:
            node = spec()["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
            continue
        if "anyOf" in node:
            shaped = [o for o in node["anyOf"] if o.get("type") in ("object", "array") or "$ref" in o]
            node = shaped[0] if shaped else node["anyOf"][0]
            continue
        return node
    return None


def _children(node: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    resolved = _resolve(node)
    if resolved is None:
        return {}
    props: dict[str, dict[str, Any]] = resolved.get("properties") or {}
    return props


def _spec_params(operation: str) -> dict[str, dict[str, Any] | None]:
    method, path = operation.split(" ", 1)
    found: dict[str, dict[str, Any] | None] = {}
    for template, entry in spec()["paths"].items():
        if re.sub(r"\{[^}]+\}", "{id}", template) != path or method.lower() not in entry:
            continue
        op = entry[method.lower()]
        if method == "POST":
            body = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
            found.update(body.get("properties") or {})
        else:
            found.update({p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"})
    return found


def _sdk_params(operation: str) -> set[str]:
    module, _, name = SDK_PARAMS[operation].partition(":")
    cls = getattr(importlib.import_module("stripe.params" + (f".{module}" if module else "")), name)
    return set(cls.__annotations__) - set(RequestOptions.__annotations__)


def _walk(
    operation: str,
    table: dict[str, Spec],
    stripe_params: dict[str, dict[str, Any] | None],
    prefix: tuple[Any, ...],
) -> Iterator[Param | str]:
    """Each parameter of one level (and deeper where the sandbox takes a hash apart), or a problem."""
    for name in sorted(set(stripe_params) | set(table)):
        path = (*prefix, name)
        sub = table.get(name)
        schema = stripe_params.get(name)
        if sub is None:
            yield f"{operation} {Param(operation, path, False, None).name}: neither simulated nor refused"
        elif isinstance(sub, Unsimulated):
            yield Param(operation, path, True, schema)
        elif isinstance(sub, Hash):
            yield from _walk(operation, sub.fields, _children(schema), path)
        elif isinstance(sub, Array) and isinstance(sub.item, Hash):
            items = _resolve(schema)
            yield from _walk(
                operation, sub.item.fields, _children(items.get("items") if items else None), (*path, 0)
            )
        else:
            yield Param(operation, path, False, schema)


def _routed() -> list[str]:
    app = create_sandbox_app()
    keys = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and "/v1/" in route.path:
            keys += [operation_key(m, route.path) for m in route.methods if m not in ("HEAD", "OPTIONS")]
    return sorted(keys)


def _all_params() -> tuple[list[Param], list[str]]:
    params: list[Param] = []
    problems: list[str] = []
    for operation in _routed():
        stripe_params: dict[str, dict[str, Any] | None] = dict.fromkeys(_sdk_params(operation))
        stripe_params.update(_spec_params(operation))
        for found in _walk(operation, OPERATIONS[operation], stripe_params, ()):
            (problems if isinstance(found, str) else params).append(found)  # type: ignore[arg-type]
    return params, problems


def _sample(schema: dict[str, Any] | None) -> Any:
    """A small value of the parameter's type (the refusal must not depend on the value)."""
    node = _resolve(schema)
    if node is None:
        return "x"
    if "enum" in node:
        return node["enum"][0] if node["enum"][0] != "" else "x"
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties") or {}
        required = node.get("required") or list(props)[:1]
        return {k: _sample(props[k]) for k in required if k in props} or {"k": "v"}
    if kind == "array":
        return [_sample(node.get("items"))]
    return {"integer": 1, "boolean": True, "number": 1}.get(str(kind), "x")


def _request(param: Param) -> tuple[str, str, dict[str, Any]]:
    method, path = param.operation.split(" ", 1)
    url = path.replace("{id}", "cs_test_unknown")
    base: dict[str, Any] = session_params() if param.operation == "POST /v1/checkout/sessions" else {}
    node: Any = base
    for step in param.path[:-1]:
        node = node[step] if isinstance(step, int) else node.setdefault(step, {})
    node[param.path[-1]] = _sample(param.schema)
    return method.lower(), url, base


def test_every_route_has_a_table_and_every_stripe_parameter_a_row() -> None:
    require_shared()
    assert _routed() == sorted(OPERATIONS)
    params, problems = _all_params()
    assert problems == []
    # Deletes take no parameter at all (Stripe's and the sandbox's tables are both empty).
    assert {p.operation for p in params} == {op for op, table in OPERATIONS.items() if table}
    assert sum(p.refused for p in params) > 40


def test_every_refused_parameter_is_refused_by_name(sandbox: SandboxServer) -> None:
    require_shared()
    client = stripe.StripeClient(
        "sk_test_sandbox_tests",
        base_addresses={"api": sandbox.url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
        max_network_retries=0,
    )
    wrong: list[str] = []
    refused = [p for p in _all_params()[0] if p.refused]
    for param in refused:
        method, url, body = _request(param)
        try:
            client.raw_request(method, url, **copy.deepcopy(body))
        except stripe.InvalidRequestError as err:
            expected = f"does not simulate `{param.name}`"
            if err.http_status == 400 and err.param == param.name and expected in (err.user_message or ""):
                continue
            wrong.append(f"{param.key}: {err.http_status} {err.param} {err.user_message}")
        else:
            wrong.append(f"{param.key}: accepted")
    assert wrong == []
    assert len(sandbox.state.sessions) == 0


def test_every_simulated_parameter_has_a_test() -> None:
    require_shared()
    simulated = {p.key for p in _all_params()[0] if not p.refused}
    claimed: dict[str, str] = {}
    problems: list[str] = []
    for test, keys in EVIDENCE.items():
        module, _, name = test.partition(":")
        function = getattr(importlib.import_module(module), name, None)
        if function is None:
            problems.append(f"{test}: no such test")
            continue
        source = inspect.getsource(function)
        for key in keys:
            leaf = _leaf(key)
            if leaf not in source:
                problems.append(f"{test} does not mention {leaf} ({key})")
            claimed[key] = test
    problems += [f"{key}: refused or not a parameter" for key in sorted(set(claimed) - simulated)]
    unclaimed = [key for key in sorted(simulated - set(claimed)) if _module_evidence(key) is None]
    problems += [f"{key}: simulated but no test shows it" for key in unclaimed]
    assert problems == []


@pytest.mark.parametrize("value", ["1", "", "x"])
def test_refusal_ignores_the_value_but_not_unset(sandbox: SandboxServer, value: str) -> None:
    """An empty value means "unset" to Stripe, so only a real value is refused."""
    body = {"mode": "payment", "success_url": "https://shop.example/ok", "tax_id_collection": value}
    body |= {"line_items[0][price]": "price_nope", "line_items[0][quantity]": "1"}
    response = httpx.post(
        f"{sandbox.url}/v1/checkout/sessions", data=body, headers={"Authorization": "Bearer sk_test_x1"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    if value:
        assert error["param"] == "tax_id_collection"
    else:
        assert error["param"] == "line_items[0][price]"
