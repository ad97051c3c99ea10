"""Customers through the official SDK: create, retrieve, update, delete, list, search; errors, idempotency."""

from __future__ import annotations

import base64
from functools import partial
from typing import Any

import pytest
import stripe

from tests.sandbox.conftest import raw_get, refused, session_params, unique
from tests.sandbox.stripe_spec import conformance_problems, response_problems, response_validator
from tests.support.sandbox_server import SandboxServer


def test_customer_create_retrieve_update(module_client: stripe.StripeClient) -> None:
    customers = module_client.v1.customers
    tag = unique()
    made = customers.create(
        params={
            "email": f"jenny.{tag}@example.com",
            "name": "Jenny Rosen",
            "phone": "+15555550123",
            "address": {"country": "de", "city": "Berlin"},
            "shipping": {"name": "Jenny", "address": {"line1": "Main St 1"}},
            "metadata": {"user": tag, "tier": "gold"},
            "preferred_locales": ["de", "en"],
        }
    )
    assert made.id.startswith("cus_")
    assert made.object == "customer"
    assert made.email == f"jenny.{tag}@example.com"
    assert made.address.country == "DE"
    assert made.address.city == "Berlin"
    assert made.shipping.address.line1 == "Main St 1"
    assert made.tax_exempt == "none"
    assert made.balance == 0
    assert len(made.invoice_prefix) == 8
    got = customers.retrieve(made.id)
    assert got.metadata.to_dict() == {"user": tag, "tier": "gold"}
    changed = customers.update(
        made.id, params={"name": "Jenny R.", "phone": "", "metadata": {"tier": ""}, "tax_exempt": "reverse"}
    )
    assert changed.name == "Jenny R."
    assert changed.phone is None
    assert changed.metadata.to_dict() == {"user": tag}
    assert changed.tax_exempt == "reverse"
    assert customers.update(made.id, params={"address": ""}).address is None
    bare = customers.create()
    assert bare.email is None
    assert bare.address is None


def test_customer_errors(module_client: stripe.StripeClient) -> None:
    customers = module_client.v1.customers
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"email": "not-an-email"}, "email", "Invalid email address: not-an-email"),
        ({"address": {"country": "Germany"}}, "address[country]", "Invalid string"),
        ({"address": {"country": "1X"}}, "address[country]", "is unknown"),
        ({"balance": 100}, "balance", "The Stripe sandbox does not simulate `balance`"),
        ({"payment_method": "pm_card_visa"}, "payment_method", "does not simulate"),
        ({"tax_id_data": [{"type": "eu_vat", "value": "DE123"}]}, "tax_id_data", "does not simulate"),
        ({"bogus": "1"}, "bogus", "Received unknown parameter: bogus"),
    ]
    for params, param, message in cases:
        refused(partial(customers.create, params=params), param, message)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        customers.retrieve("cus_missing")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such customer: 'cus_missing'"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        customers.update("cus_missing", params={"name": "x"})
    assert missing.value.code == "resource_missing"


def test_customer_idempotency_and_pagination(module_client: stripe.StripeClient) -> None:
    customers = module_client.v1.customers
    tag = unique()
    email = f"same.{tag}@example.com"
    key = f"customer-{tag}"
    first = customers.create(params={"email": email}, options={"idempotency_key": key})
    replay = customers.create(params={"email": email}, options={"idempotency_key": key})
    assert replay.id == first.id
    assert replay.last_response is not None
    assert replay.last_response.headers["idempotent-replayed"] == "true"
    assert replay.last_response.headers["original-request"] == first.last_response.request_id
    with pytest.raises(stripe.IdempotencyError):
        customers.create(params={"email": f"other.{tag}@example.com"}, options={"idempotency_key": key})

    ids = [customers.create(params={"email": email, "name": f"n{i}"}).id for i in range(4)]
    everyone = [first.id, *ids]
    page = customers.list(params={"email": email, "limit": 3})
    assert [c.id for c in page.data] == everyone[::-1][:3]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    tail = customers.list(params={"email": email, "limit": 3, "starting_after": page.data[-1].id})
    assert [c.id for c in tail.data] == everyone[::-1][3:]
    assert tail.has_more is False
    before = customers.list(params={"email": email, "limit": 2, "ending_before": ids[1]})
    assert [c.id for c in before.data] == [ids[3], ids[2]]
    assert [c.id for c in customers.list(params={"email": email}).auto_paging_iter()] == everyone[::-1]
    assert customers.list(params={"email": email.upper()}).data == []  # Stripe's filter is case-sensitive


def test_customer_search(module_client: stripe.StripeClient) -> None:
    customers = module_client.v1.customers
    tag = unique()
    ann = customers.create(
        params={"email": f"ann.{tag}@example.com", "name": "Ann Lee", "metadata": {"t": tag}}
    )
    bob = customers.create(
        params={"email": f"bob.{tag}@example.com", "name": "Bob Lee", "metadata": {"t": tag}}
    )
    cat = customers.create(
        params={"email": f"cat.{tag}@example.com", "name": "Cat Kim", "metadata": {"t": tag}}
    )

    def found(query: str, **extra: Any) -> list[str]:
        return [c.id for c in customers.search(params={"query": query, **extra}).data]

    assert found(f'email:"ANN.{tag}@example.com"') == [ann.id]
    assert found(f"metadata['t']:'{tag}'") == [cat.id, bob.id, ann.id]
    assert found(f'metadata["t"]:"{tag}" AND name~"Lee"') == [bob.id, ann.id]
    assert found(f'metadata["t"]:"{tag}" AND -name~"Lee"') == [cat.id]
    assert found(f'email:"ann.{tag}@example.com" OR email:"cat.{tag}@example.com"') == [cat.id, ann.id]
    assert found(f'metadata["t"]:"{tag}" AND created>={ann.created} AND phone:null') == [
        cat.id,
        bob.id,
        ann.id,
    ]
    assert found(f'metadata["t"]:"{tag}" AND created<{ann.created}') == []

    first = customers.search(params={"query": f'metadata["t"]:"{tag}"', "limit": 2})
    assert first.object == "search_result"
    assert first.url == "/v1/customers/search"
    assert [c.id for c in first.data] == [cat.id, bob.id]
    assert first.has_more is True
    assert first.next_page
    second = customers.search(params={"query": f'metadata["t"]:"{tag}"', "limit": 2, "page": first.next_page})
    assert [c.id for c in second.data] == [ann.id]
    assert second.has_more is False
    assert second.next_page is None
    every = customers.search(params={"query": f'metadata["t"]:"{tag}"', "limit": 1}).auto_paging_iter()
    assert [c.id for c in every] == [cat.id, bob.id, ann.id]


def test_customer_search_pages_resume_after_the_last_shown(module_client: stripe.StripeClient) -> None:
    """Regression: `next_page` was an offset, so a customer made between two pages pushed the
    results along and the second page repeated one already shown; it is a cursor now."""
    customers = module_client.v1.customers
    tag = unique()
    query = f'metadata["t"]:"{tag}"'
    made = [customers.create(params={"name": f"N{i}", "metadata": {"t": tag}}).id for i in range(3)]
    first = customers.search(params={"query": query, "limit": 2})
    assert [c.id for c in first.data] == [made[2], made[1]]
    customers.create(params={"name": "later", "metadata": {"t": tag}})  # newest: belongs before page 1
    second = customers.search(params={"query": query, "limit": 2, "page": first.next_page})
    assert [c.id for c in second.data] == [made[0]]
    assert (second.has_more, second.next_page) == (False, None)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Missing required param: query"),
        ("email", "could not parse"),
        ('email:"a@b.example" and name:"x"', "could not parse"),
        ('email:"a@b.example" AND name:"x" OR name:"y"', "cannot mix `AND` and `OR`"),
        ('nickname:"x"', "Field `nickname` is an unsupported search field for resource `customers`"),
        ('name~"ab"', "at least 3 characters"),
        ('name>"x"', "needs a numeric field"),
        ('created:"yesterday"', "is numeric"),
        ('metadata:"x"', 'metadata[\\"key\\"]'),
        (" AND ".join(f'name:"n{i}"' for i in range(11)), "at most 10 clauses"),
    ],
)
def test_customer_search_refuses_what_it_cannot_parse(
    module_client: stripe.StripeClient, query: str, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        module_client.v1.customers.search(params={"query": query})
    assert err.value.http_status == 400
    assert err.value.param == "query"
    assert message.replace("\\", "") in str(err.value.user_message)
    assert err.value.error is not None
    assert err.value.error.type == "invalid_request_error"


def test_customer_search_bad_page(module_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        module_client.v1.customers.search(params={"query": 'name:"x"', "page": "garbage"})
    assert err.value.param == "page"
    unknown = base64.urlsafe_b64encode(b"sandbox:cus_doesnotexist").decode()
    with pytest.raises(stripe.InvalidRequestError) as err:
        module_client.v1.customers.search(params={"query": 'name:"x"', "page": unknown})
    assert (err.value.http_status, err.value.param) == (400, "page")


def test_customer_objects_conform(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    tag = unique()
    made = module_client.v1.customers.create(
        params={"email": f"c.{tag}@example.com", "address": {"country": "FR"}, "metadata": {"t": tag}}
    )
    module_client.v1.customers.update(made.id, params={"name": "Conform"})
    objects = [
        raw_get(module_sandbox, f"/v1/customers/{made.id}"),
        raw_get(module_sandbox, "/v1/customers?limit=3"),
        raw_get(module_sandbox, "/v1/events?types[]=customer.created&types[]=customer.updated"),
    ]
    search = raw_get(module_sandbox, f"/v1/customers/search?query=metadata%5B%22t%22%5D%3A%22{tag}%22")
    assert [c["id"] for c in search["data"]] == [made.id]
    problems = {p for obj in objects for p in conformance_problems(obj)}
    problems |= set(response_problems("/v1/customers/search", "get", search))
    assert sorted(problems) == []


def test_customer_delete(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    """As Stripe: the stub answers the delete and later retrieves; every other use is resource_missing."""
    customers = module_client.v1.customers
    tag = unique()
    made = customers.create(params={"email": f"gone.{tag}@example.com", "metadata": {"t": tag}})
    kept = customers.create(params={"email": f"gone.{tag}@example.com"})
    gone = customers.delete(made.id)
    assert gone.to_dict() == {"id": made.id, "object": "customer", "deleted": True}
    stub = raw_get(module_sandbox, f"/v1/customers/{made.id}")
    assert stub == {"id": made.id, "object": "customer", "deleted": True}
    assert [e.message for e in response_validator("deleted_customer").iter_errors(stub)] == []
    assert customers.retrieve(made.id).to_dict().get("deleted") is True
    for call in (partial(customers.delete, made.id), partial(customers.update, made.id, {"name": "x"})):
        with pytest.raises(stripe.InvalidRequestError) as err:
            call()
        assert err.value.http_status == 404
        assert err.value.code == "resource_missing"
        assert f"No such customer: '{made.id}'" in str(err.value.user_message)
    create_session = module_client.v1.checkout.sessions.create
    failed = refused(lambda: create_session(session_params(customer=made.id)), "customer", "No such customer")
    assert failed.code == "resource_missing"
    listed = customers.list(params={"email": f"gone.{tag}@example.com"})
    assert [c.id for c in listed.data] == [kept.id]
    found = customers.search(params={"query": f'metadata["t"]:"{tag}"'})
    assert found.data == []
    events = raw_get(module_sandbox, "/v1/events?type=customer.deleted&limit=1")["data"]
    assert events[0]["data"]["object"]["id"] == made.id
    assert events[0]["data"]["object"]["email"] == f"gone.{tag}@example.com"
    assert conformance_problems(events[0]) == []
    # The customer still makes a Checkout Session until deleted (the same call as above).
    assert create_session(session_params(customer=kept.id)).customer == kept.id
