"""Tax Rates through the official SDK, and the deterministic table automatic tax uses."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import stripe

from app.sandbox.errors import StripeError
from tests.sandbox.conftest import raw_get, refused, unique
from tests.sandbox.stripe_spec import conformance_problems
from tests.support.sandbox_server import SandboxServer


def test_tax_rate_create_retrieve_update(module_client: stripe.StripeClient) -> None:
    rates = module_client.v1.tax_rates
    tag = unique()
    vat = rates.create(
        params={
            "display_name": "VAT",
            "inclusive": False,
            "percentage": 19,
            "country": "de",
            "jurisdiction": "DE",
            "tax_type": "vat",
            "description": "VAT Germany",
            "metadata": {"t": tag},
        }
    )
    assert vat.id.startswith("txr_")
    assert (vat.percentage, vat.effective_percentage, vat.inclusive, vat.country) == (19, 19, False, "DE")
    assert vat.active is True
    decimal = rates.create(params={"display_name": "ALV", "inclusive": True, "percentage": "25.5"})
    assert decimal.percentage == 25.5
    assert rates.retrieve(vat.id).description == "VAT Germany"
    changed = rates.update(
        vat.id, params={"active": False, "description": "", "metadata": {"t": "", "u": "1"}}
    )
    assert changed.active is False
    assert changed.description is None
    assert changed.metadata.to_dict() == {"u": "1"}


def test_tax_rate_errors(module_client: stripe.StripeClient) -> None:
    rates = module_client.v1.tax_rates
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"inclusive": False, "percentage": 5}, "display_name", "Missing required param: display_name."),
        ({"display_name": "x", "percentage": 5}, "inclusive", "Missing required param: inclusive."),
        ({"display_name": "x", "inclusive": False}, "percentage", "Missing required param: percentage."),
        (
            {"display_name": "x", "inclusive": False, "percentage": 101},
            "percentage",
            "less than or equal to 100",
        ),
        (
            {"display_name": "x", "inclusive": False, "percentage": 5, "tax_type": "bogus"},
            "tax_type",
            "must be one of",
        ),
        (
            {"display_name": "x", "inclusive": False, "percentage": 5, "country": "Deutschland"},
            "country",
            "at most 2",
        ),
    ]
    for params, param, message in cases:
        refused(partial(rates.create, params=params), param, message)
    made = rates.create(params={"display_name": "x", "inclusive": False, "percentage": 5})
    refused(
        partial(rates.update, made.id, params={"percentage": 6}), "percentage", "Received unknown parameter"
    )
    with pytest.raises(stripe.InvalidRequestError) as missing:
        rates.retrieve("txr_missing")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such tax_rate: 'txr_missing'"


def test_tax_rate_idempotency_and_pagination(module_client: stripe.StripeClient) -> None:
    rates = module_client.v1.tax_rates
    key = f"rate-{unique()}"
    params = {"display_name": "GST", "inclusive": True, "percentage": 10}
    first = rates.create(params=params, options={"idempotency_key": key})
    again = rates.create(params=params, options={"idempotency_key": key})
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["idempotent-replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        rates.create(params={**params, "percentage": 11}, options={"idempotency_key": key})
    made = [
        rates.create(params={"display_name": f"r{i}", "inclusive": True, "percentage": i}).id
        for i in range(3)
    ]
    page = rates.list(params={"limit": 2, "inclusive": True})
    assert [r.id for r in page.data] == made[::-1][:2]
    assert page.has_more is True
    assert page.url == "/v1/tax_rates"
    after = rates.list(params={"limit": 2, "inclusive": True, "starting_after": page.data[-1].id})
    assert after.data[0].id == made[0]
    before = rates.list(params={"limit": 5, "ending_before": made[0]})
    assert [r.id for r in before.data] == [made[2], made[1]]
    rates.update(made[1], params={"active": False})
    inactive = {r.id for r in rates.list(params={"active": False, "limit": 100}).data}
    assert made[1] in inactive
    assert made[0] not in inactive
    assert all(not r.inclusive for r in rates.list(params={"inclusive": False, "limit": 100}).data)


def test_automatic_tax_table(module_sandbox: SandboxServer) -> None:
    sandbox = module_sandbox
    state = sandbox.state
    exclusive = sandbox.call(lambda: state.automatic_tax_for("DE", 1000, False))
    assert exclusive.amount_tax == 190
    assert exclusive.taxability_reason == "standard_rated"
    assert exclusive.rate is not None
    assert (exclusive.rate["percentage"], exclusive.rate["country"], exclusive.rate["inclusive"]) == (
        19,
        "DE",
        False,
    )
    inclusive = sandbox.call(lambda: state.automatic_tax_for("de", 1190, True))
    assert inclusive.amount_tax == 190
    assert inclusive.rate is not None
    assert inclusive.rate["inclusive"] is True
    assert sandbox.call(lambda: state.automatic_tax_for("DE", 999, False)).amount_tax == 190  # 189.81
    assert sandbox.call(lambda: state.automatic_tax_for("FI", 1000, False)).amount_tax == 255
    again = sandbox.call(lambda: state.automatic_tax_for("DE", 50, False))
    assert again.rate is not None
    assert again.rate["id"] == exclusive.rate["id"]  # one rate per country and inclusiveness
    untaxed = sandbox.call(lambda: state.automatic_tax_for("US", 1000, False))
    assert (untaxed.amount_tax, untaxed.rate, untaxed.taxability_reason) == (0, None, "not_collecting")
    assert sandbox.call(lambda: state.automatic_tax_for(None, 1000, True)).amount_tax == 0
    exempt = sandbox.call(lambda: state.automatic_tax_for("DE", 1000, False, "exempt"))
    assert (exempt.amount_tax, exempt.taxability_reason) == (0, "customer_exempt")
    reverse = sandbox.call(lambda: state.automatic_tax_for("FR", 1000, False, "reverse"))
    assert (reverse.amount_tax, reverse.taxability_reason) == (0, "reverse_charge")


def test_tax_for_rates(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    sandbox = module_sandbox
    vat = module_client.v1.tax_rates.create(
        params={"display_name": "VAT", "inclusive": False, "percentage": 20}
    )
    inc = module_client.v1.tax_rates.create(
        params={"display_name": "VAT", "inclusive": True, "percentage": 20}
    )
    taxed = sandbox.call(
        lambda: sandbox.state.tax_for_rates([vat.id, inc.id], 1200, "line_items[0][tax_rates]")
    )
    assert [(r["id"], amount) for r, amount in taxed] == [(vat.id, 240), (inc.id, 200)]
    module_client.v1.tax_rates.update(inc.id, params={"active": False})
    with pytest.raises(StripeError, match="inactive") as err:
        sandbox.call(lambda: sandbox.state.tax_for_rates([inc.id], 100, "line_items[0][tax_rates]"))
    assert err.value.param == "line_items[0][tax_rates][0]"
    with pytest.raises(StripeError, match="No such tax rate") as missing:
        sandbox.call(lambda: sandbox.state.tax_for_rates(["txr_nope"], 100, "line_items[1][tax_rates]"))
    assert missing.value.param == "line_items[1][tax_rates][0]"


def test_tax_objects_conform(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    rate = module_client.v1.tax_rates.create(
        params={"display_name": "VAT", "inclusive": False, "percentage": 7.5}
    )
    module_client.v1.tax_rates.update(rate.id, params={"display_name": "USt"})
    objects = [
        raw_get(module_sandbox, f"/v1/tax_rates/{rate.id}"),
        raw_get(module_sandbox, "/v1/tax_rates?limit=5"),
        raw_get(module_sandbox, "/v1/events?types[]=tax_rate.created&types[]=tax_rate.updated"),
    ]
    assert sorted({p for obj in objects for p in conformance_problems(obj)}) == []
