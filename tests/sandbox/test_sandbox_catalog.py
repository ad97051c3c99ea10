"""Products and Prices through the official SDK: behaviour, errors, idempotency, lists, search,
and the Prices Checkout charges (`GET /v1/prices/{id}`, as Stripe's sample app calls on /config)."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import stripe

from tests.sandbox.conftest import raw_get, refused, session_params, unique
from tests.sandbox.stripe_spec import conformance_problems, response_problems
from tests.support.sandbox_server import SandboxServer


def test_product_create_retrieve_update(module_client: stripe.StripeClient) -> None:
    products = module_client.v1.products
    tag = unique()
    made = products.create(
        params={
            "name": "1000 coins",
            "description": "A coin pack",
            "metadata": {"pack": tag},
            "marketing_features": [{"name": "Never expires"}],
            "default_price_data": {"currency": "EUR", "unit_amount": 999, "tax_behavior": "inclusive"},
        }
    )
    assert made.id.startswith("prod_")
    assert made.active is True
    assert made.marketing_features[0].name == "Never expires"
    assert isinstance(made.default_price, str)
    price = module_client.v1.prices.retrieve(made.default_price)
    assert (price.unit_amount, price.currency, price.product, price.tax_behavior) == (
        999,
        "eur",
        made.id,
        "inclusive",
    )
    expanded = products.retrieve(made.id, params={"expand": ["default_price"]})
    assert expanded.default_price.unit_amount == 999
    custom = products.create(
        params={"id": f"prod_pack_{tag}", "name": "Custom id", "features": [{"name": "Old"}]}
    )
    assert custom.id == f"prod_pack_{tag}"
    assert custom.marketing_features[0].name == "Old"
    assert custom.default_price is None
    changed = products.update(
        made.id, params={"name": "1000 coins (new)", "description": "", "metadata": {"pack": "", "v": "2"}}
    )
    assert changed.name == "1000 coins (new)"
    assert changed.description is None
    assert changed.metadata.to_dict() == {"v": "2"}
    assert changed.updated >= made.updated
    second = module_client.v1.prices.create(
        params={"product": made.id, "currency": "eur", "unit_amount": 1999}
    )
    assert products.update(made.id, params={"default_price": second.id}).default_price == second.id
    assert products.update(made.id, params={"active": False}).active is False


def test_product_errors(module_client: stripe.StripeClient) -> None:
    products = module_client.v1.products
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({}, "name", "Missing required param: name."),
        ({"name": "x", "package_dimensions": {"height": 1}}, "package_dimensions", "does not simulate"),
        (
            {"name": "x", "default_price_data": {"currency": "eur"}},
            "default_price_data[unit_amount]",
            "Missing",
        ),
        (
            {
                "name": "x",
                "default_price_data": {
                    "currency": "eur",
                    "unit_amount": 5,
                    "recurring": {"interval": "month"},
                },
            },
            "default_price_data[recurring]",
            "does not simulate",
        ),
        (
            {"name": "x", "default_price_data": {"currency": "zzz", "unit_amount": 5}},
            "default_price_data[currency]",
            "Invalid currency",
        ),
    ]
    for params, param, message in cases:
        refused(partial(products.create, params=params), param, message)
    tag = unique()
    products.create(params={"id": f"prod_dup_{tag}", "name": "x"})
    with pytest.raises(stripe.InvalidRequestError) as dup:
        products.create(params={"id": f"prod_dup_{tag}", "name": "x"})
    assert dup.value.code == "resource_already_exists"
    other = products.create(
        params={"name": "other", "default_price_data": {"currency": "eur", "unit_amount": 5}}
    )
    with pytest.raises(stripe.InvalidRequestError) as foreign:
        products.update(f"prod_dup_{tag}", params={"default_price": other.default_price})
    assert foreign.value.param == "default_price"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        products.retrieve("prod_missing")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such product: 'prod_missing'"


def test_price_create_retrieve_update(module_client: stripe.StripeClient) -> None:
    prices = module_client.v1.prices
    tag = unique()
    made = prices.create(
        params={
            "currency": "usd",
            "unit_amount_decimal": "1250",
            "product_data": {"name": "API quota 10k", "metadata": {"t": tag}},
            "lookup_key": f"quota_{tag}",
            "nickname": "Quota",
            "metadata": {"t": tag},
        }
    )
    assert made.id.startswith("price_")
    assert (made.unit_amount, str(made.unit_amount_decimal), made.type, made.billing_scheme) == (
        1250,
        "1250",
        "one_time",
        "per_unit",
    )
    assert made.recurring is None
    product = module_client.v1.products.retrieve(made.product)
    assert product.name == "API quota 10k"
    again = prices.retrieve(made.id, params={"expand": ["product"]})
    assert again.product.name == "API quota 10k"
    changed = prices.update(
        made.id, params={"nickname": "", "active": False, "metadata": {"x": "1"}, "tax_behavior": "exclusive"}
    )
    assert changed.nickname is None
    assert changed.active is False
    assert changed.metadata.to_dict() == {"t": tag, "x": "1"}
    assert changed.tax_behavior == "exclusive"
    with pytest.raises(stripe.InvalidRequestError) as fixed:
        prices.update(made.id, params={"tax_behavior": "inclusive"})
    assert fixed.value.param == "tax_behavior"
    # A lookup key names one price; taking it needs transfer_lookup_key.
    with pytest.raises(stripe.InvalidRequestError) as taken:
        prices.create(
            params={
                "currency": "usd",
                "unit_amount": 1,
                "product": made.product,
                "lookup_key": f"quota_{tag}",
            }
        )
    assert taken.value.param == "lookup_key"
    moved = prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1,
            "product": made.product,
            "lookup_key": f"quota_{tag}",
            "transfer_lookup_key": True,
        }
    )
    assert moved.lookup_key == f"quota_{tag}"
    assert prices.retrieve(made.id).lookup_key is None
    assert [p.id for p in prices.list(params={"lookup_keys": [f"quota_{tag}"]}).data] == [moved.id]


def test_price_errors(module_client: stripe.StripeClient) -> None:
    prices = module_client.v1.prices
    product = module_client.v1.products.create(params={"name": "p"})
    base = {"currency": "eur", "product": product.id}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"unit_amount": 5}, "currency", "Missing required param: currency."),
        ({"currency": "eur", "unit_amount": 5}, "product", "exactly one of"),
        ({**base}, "unit_amount", "Missing required param: unit_amount."),
        ({**base, "unit_amount": -1}, "unit_amount", "greater than or equal to 0"),
        ({**base, "unit_amount_decimal": "12.5"}, "unit_amount_decimal", "whole minor units"),
        ({**base, "unit_amount": 5, "recurring": {"interval": "month"}}, "recurring", "does not simulate"),
        ({**base, "unit_amount": 5, "tiers_mode": "volume"}, "tiers_mode", "does not simulate"),
        ({**base, "unit_amount": 5, "billing_scheme": "tiered"}, "billing_scheme", "does not simulate"),
        (
            {**base, "unit_amount": 5, "custom_unit_amount": {"enabled": True}},
            "custom_unit_amount",
            "does not simulate",
        ),
        ({"currency": "eur", "unit_amount": 5, "product": "prod_missing"}, "product", "No such product"),
    ]
    for params, param, message in cases:
        refused(partial(prices.create, params=params), param, message)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        prices.retrieve("price_missing")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such price: 'price_missing'"


def test_catalog_idempotency_and_pagination(module_client: stripe.StripeClient) -> None:
    client = module_client
    tag = unique()
    key = f"product-{tag}"
    first = client.v1.products.create(params={"name": tag}, options={"idempotency_key": key})
    replay = client.v1.products.create(params={"name": tag}, options={"idempotency_key": key})
    assert replay.id == first.id
    assert replay.last_response is not None
    assert replay.last_response.headers["idempotent-replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.products.create(params={"name": "other"}, options={"idempotency_key": key})
    pkey = f"price-{tag}"
    price = client.v1.prices.create(
        params={"product": first.id, "currency": "eur", "unit_amount": 100}, options={"idempotency_key": pkey}
    )
    assert (
        client.v1.prices.create(
            params={"product": first.id, "currency": "eur", "unit_amount": 100},
            options={"idempotency_key": pkey},
        ).id
        == price.id
    )

    ids = [price.id] + [
        client.v1.prices.create(params={"product": first.id, "currency": "eur", "unit_amount": 200 + i}).id
        for i in range(3)
    ]
    page = client.v1.prices.list(params={"product": first.id, "limit": 3})
    assert [p.id for p in page.data] == ids[::-1][:3]
    assert page.has_more is True
    assert page.url == "/v1/prices"
    tail = client.v1.prices.list(params={"product": first.id, "starting_after": page.data[-1].id})
    assert [p.id for p in tail.data] == [ids[0]]
    before = client.v1.prices.list(params={"product": first.id, "ending_before": ids[0], "limit": 2})
    assert [p.id for p in before.data] == [ids[2], ids[1]]
    assert before.has_more is True
    client.v1.prices.update(ids[1], params={"active": False})
    active = [
        p.id for p in client.v1.prices.list(params={"product": first.id, "active": True}).auto_paging_iter()
    ]
    assert active == [ids[3], ids[2], ids[0]]
    assert client.v1.prices.list(params={"product": first.id, "type": "recurring"}).data == []
    assert client.v1.prices.list(params={"product": first.id, "currency": "usd"}).data == []

    products = [
        client.v1.products.create(params={"name": f"{tag}-{i}", "metadata": {"t": tag}}).id for i in range(3)
    ]
    listed = client.v1.products.list(params={"ids": products, "limit": 2})
    assert [p.id for p in listed.data] == products[::-1][:2]
    assert listed.has_more is True
    assert listed.url == "/v1/products"
    found = client.v1.products.search(params={"query": f'metadata["t"]:"{tag}" AND name~"{tag}-1"'})
    assert [p.id for p in found.data] == [products[1]]
    assert found.url == "/v1/products/search"
    by_product = client.v1.prices.search(
        params={"query": f'product:"{first.id}" AND active:"true"', "limit": 2}
    )
    assert [p.id for p in by_product.data] == [ids[3], ids[2]]
    assert by_product.has_more is True
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.prices.search(params={"query": "unit_amount>5"})
    assert bad.value.param == "query"


def test_checkout_charges_catalogue_prices(
    module_client: stripe.StripeClient, module_sandbox: SandboxServer
) -> None:
    client, sandbox = module_client, module_sandbox
    tag = unique()
    registered = sandbox.control(
        "POST", "prices", id=f"price_reg_{tag}", currency="eur", unit_amount=700, product_name="Quota pack"
    )
    fetched = client.v1.prices.retrieve(
        registered["id"], params={"expand": ["product"]}
    )  # the sample app's /config
    assert (fetched.unit_amount, fetched.currency, fetched.active) == (700, "eur", True)
    assert fetched.product.name == "Quota pack"
    product = client.v1.products.create(
        params={"name": "Coins 500", "default_price_data": {"currency": "eur", "unit_amount": 450}}
    )
    assert isinstance(product.default_price, str)
    session = client.v1.checkout.sessions.create(
        params=session_params(
            line_items=[
                {"price": product.default_price, "quantity": 2},
                {"price": registered["id"], "quantity": 1},
            ]
        )
    )
    assert session.amount_total == 1600
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert [(i.description, i.price.id) for i in items] == [
        ("Coins 500", product.default_price),
        ("Quota pack", registered["id"]),
    ]
    with_product = client.v1.checkout.sessions.create(
        params=session_params(
            line_items=[
                {"quantity": 1, "price_data": {"currency": "eur", "unit_amount": 900, "product": product.id}}
            ]
        )
    )
    assert client.v1.checkout.sessions.line_items.list(with_product.id).data[0].description == "Coins 500"
    client.v1.prices.update(product.default_price, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as inactive:
        client.v1.checkout.sessions.create(
            params=session_params(line_items=[{"price": product.default_price, "quantity": 1}])
        )
    assert inactive.value.param == "line_items[0][price]"
    assert "inactive" in str(inactive.value.user_message)
    client.v1.products.update(product.id, params={"active": False})
    second = client.v1.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 100})
    with pytest.raises(stripe.InvalidRequestError, match="inactive"):
        client.v1.checkout.sessions.create(
            params=session_params(line_items=[{"price": second.id, "quantity": 1}])
        )


def test_catalog_objects_conform(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    tag = unique()
    product = module_client.v1.products.create(
        params={
            "name": tag,
            "metadata": {"t": tag},
            "default_price_data": {"currency": "eur", "unit_amount": 300},
        }
    )
    module_client.v1.products.update(product.id, params={"name": f"{tag}!"})
    module_client.v1.prices.update(str(product.default_price), params={"nickname": "n"})
    objects = [
        raw_get(module_sandbox, f"/v1/products/{product.id}"),
        raw_get(module_sandbox, f"/v1/products/{product.id}?expand[]=default_price"),
        raw_get(module_sandbox, f"/v1/prices/{product.default_price}"),
        raw_get(module_sandbox, "/v1/products?limit=3"),
        raw_get(module_sandbox, "/v1/prices?limit=3&expand[]=data.product"),
        raw_get(
            module_sandbox,
            "/v1/events?types[]=product.created&types[]=product.updated&types[]=price.created&types[]=price.updated",
        ),
    ]
    problems = {p for obj in objects for p in conformance_problems(obj)}
    query = f"/v1/products/search?query=metadata%5B%22t%22%5D%3A%22{tag}%22"
    problems |= set(response_problems("/v1/products/search", "get", raw_get(module_sandbox, query)))
    problems |= set(
        response_problems(
            "/v1/prices/search",
            "get",
            raw_get(module_sandbox, f"/v1/prices/search?query=product%3A%22{product.id}%22"),
        )
    )
    assert sorted(problems) == []
