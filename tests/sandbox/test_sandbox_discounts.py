"""Coupons and Promotion Codes through the official SDK: behaviour, errors, idempotency, lists."""

from __future__ import annotations

import time

import pytest
import stripe

from app.sandbox.errors import StripeError
from tests.sandbox.conftest import raw_get, refused, unique
from tests.sandbox.stripe_spec import conformance_problems
from tests.support.sandbox_server import SandboxServer


def test_coupon_create_retrieve_update(module_client: stripe.StripeClient) -> None:
    client = module_client
    cid = f"SAVE{unique().upper()}"
    percent = client.v1.coupons.create(
        params={"id": cid, "percent_off": 25.5, "name": "A quarter", "metadata": {"a": "1", "b": "2"}}
    )
    assert percent.id == cid
    assert percent.percent_off == 25.5
    assert percent.amount_off is None
    assert percent.currency is None
    assert percent.duration == "once"
    assert percent.valid is True
    assert percent.times_redeemed == 0
    fixed = client.v1.coupons.create(params={"amount_off": 500, "currency": "EUR", "max_redemptions": 3})
    assert len(fixed.id) == 8
    assert (fixed.amount_off, fixed.currency, fixed.max_redemptions) == (500, "eur", 3)
    assert client.v1.coupons.retrieve(cid).name == "A quarter"
    updated = client.v1.coupons.update(cid, params={"name": "Quarter off", "metadata": {"a": "", "c": "3"}})
    assert updated.name == "Quarter off"
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}
    assert client.v1.coupons.update(cid, params={"metadata": ""}).metadata.to_dict() == {}
    assert client.v1.coupons.update(cid, params={"name": ""}).name is None


def test_coupon_errors(module_client: stripe.StripeClient) -> None:
    coupons = module_client.v1.coupons
    refused(lambda: coupons.create(params={}), "percent_off", "exactly one of")
    refused(lambda: coupons.create(params={"percent_off": 10, "amount_off": 5}), "percent_off", "exactly one")
    refused(lambda: coupons.create(params={"amount_off": 5}), "currency", "Missing required param: currency")
    refused(lambda: coupons.create(params={"percent_off": 101}), "percent_off", "less than or equal to 100")
    refused(lambda: coupons.create(params={"percent_off": "x"}), "percent_off", "Invalid decimal")
    refused(
        lambda: coupons.create(params={"percent_off": 5, "duration": "forever"}),
        "duration",
        "The Stripe sandbox does not simulate `duration`",
    )
    refused(
        lambda: coupons.create(params={"percent_off": 5, "applies_to": {"products": ["prod_x"]}}),
        "applies_to",
        "does not simulate",
    )
    refused(
        lambda: coupons.create(params={"percent_off": 5, "redeem_by": int(time.time()) - 5}),
        "redeem_by",
        "must be in the future",
    )
    cid = f"DUP{unique().upper()}"
    coupons.create(params={"id": cid, "percent_off": 5})
    err = refused(lambda: coupons.create(params={"id": cid, "percent_off": 5}), "id", "already exists")
    assert err.code == "resource_already_exists"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        coupons.retrieve("NOPE_COUPON")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    assert missing.value.user_message == "No such coupon: 'NOPE_COUPON'"
    with pytest.raises(stripe.InvalidRequestError):
        coupons.update("NOPE_COUPON", params={"name": "x"})


def test_coupon_idempotency_and_pagination(module_client: stripe.StripeClient) -> None:
    coupons = module_client.v1.coupons
    key = f"coupon-{unique().upper()}"
    first = coupons.create(params={"percent_off": 10}, options={"idempotency_key": key})
    again = coupons.create(params={"percent_off": 10}, options={"idempotency_key": key})
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["idempotent-replayed"] == "true"
    assert again.last_response.headers["original-request"] == first.last_response.request_id
    with pytest.raises(stripe.IdempotencyError):
        coupons.create(params={"percent_off": 11}, options={"idempotency_key": key})

    made = [coupons.create(params={"percent_off": 1 + i}).id for i in range(3)]
    page = coupons.list(params={"limit": 2})
    assert [c.id for c in page.data] == made[::-1][:2]
    assert page.has_more is True
    assert page.url == "/v1/coupons"
    rest = coupons.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert rest.data[0].id == made[0]
    back = coupons.list(params={"limit": 1, "ending_before": made[0]})
    assert [c.id for c in back.data] == [made[1]]
    created = coupons.retrieve(made[0]).created
    assert {c.id for c in coupons.list(params={"created": {"gte": created}, "limit": 100}).data} >= set(made)
    assert coupons.list(params={"created": {"gt": created + 3600}}).data == []
    with pytest.raises(stripe.InvalidRequestError) as err:
        coupons.list(params={"starting_after": "NOPE_COUPON"})
    assert err.value.param == "starting_after"


def test_promotion_codes(module_client: stripe.StripeClient) -> None:
    client = module_client
    coupon = client.v1.coupons.create(params={"percent_off": 20, "max_redemptions": 5})
    code = f"FALL{unique().upper()}"
    promo = client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": code,
            "max_redemptions": 2,
            "metadata": {"campaign": "fall"},
            "restrictions": {"minimum_amount": 1000, "minimum_amount_currency": "eur"},
        }
    )
    assert promo.id.startswith("promo_")
    assert promo.code == code
    assert promo.active is True
    assert promo.promotion.type == "coupon"
    assert promo.promotion.coupon == coupon.id
    assert promo.restrictions.minimum_amount == 1000
    assert promo.restrictions.minimum_amount_currency == "eur"
    assert promo.restrictions.first_time_transaction is False
    expanded = client.v1.promotion_codes.retrieve(promo.id, params={"expand": ["promotion.coupon"]})
    assert expanded.promotion.coupon.percent_off == 20
    generated = client.v1.promotion_codes.create(params={"coupon": coupon.id})  # the 2023 form
    assert len(generated.code) == 8
    assert generated.promotion.coupon == coupon.id

    by_coupon = client.v1.promotion_codes.list(params={"coupon": coupon.id, "limit": 1})
    assert [p.id for p in by_coupon.data] == [generated.id]
    assert by_coupon.has_more is True
    more = client.v1.promotion_codes.list(params={"coupon": coupon.id, "starting_after": generated.id})
    assert [p.id for p in more.data] == [promo.id]
    assert more.has_more is False
    assert [p.id for p in client.v1.promotion_codes.list(params={"code": code}).data] == [promo.id]

    off = client.v1.promotion_codes.update(promo.id, params={"active": False, "metadata": {"campaign": ""}})
    assert off.active is False
    assert off.metadata.to_dict() == {}
    inactive = client.v1.promotion_codes.list(params={"coupon": coupon.id, "active": False}).data
    assert [p.id for p in inactive] == [promo.id]
    # The code is free again while inactive, and an active twin blocks reactivation.
    twin = client.v1.promotion_codes.create(params={"coupon": coupon.id, "code": code.lower()})
    refused(lambda: client.v1.promotion_codes.update(promo.id, params={"active": True}), "active", "exists")
    client.v1.promotion_codes.update(twin.id, params={"active": False})
    assert client.v1.promotion_codes.update(promo.id, params={"active": True}).active is True


def test_promotion_code_errors(module_client: stripe.StripeClient) -> None:
    codes = module_client.v1.promotion_codes
    now = int(time.time())
    coupon = module_client.v1.coupons.create(
        params={"percent_off": 5, "max_redemptions": 2, "redeem_by": now + 3600}
    )
    base = {"promotion": {"type": "coupon", "coupon": coupon.id}}
    refused(lambda: codes.create(params={}), "promotion", "Missing required param: promotion")
    refused(
        lambda: codes.create(params={"promotion": {"type": "coupon", "coupon": "NOPE_COUPON"}}),
        "promotion[coupon]",
        "No such coupon: 'NOPE_COUPON'",
    )
    refused(lambda: codes.create(params={**base, "code": "no spaces"}), "code", "may only contain")
    refused(lambda: codes.create(params={**base, "expires_at": now + 7200}), "expires_at", "redeem_by")
    refused(
        lambda: codes.create(params={**base, "max_redemptions": 3}), "max_redemptions", "cannot be greater"
    )
    refused(lambda: codes.create(params={**base, "customer": "cus_nope"}), "customer", "No such customer")
    refused(
        lambda: codes.create(params={**base, "restrictions": {"minimum_amount": 100}}),
        "restrictions[minimum_amount_currency]",
        "Missing required param",
    )
    refused(
        lambda: codes.create(
            params={**base, "restrictions": {"currency_options": {"usd": {"minimum_amount": 1}}}}
        ),
        "restrictions[currency_options]",
        "does not simulate",
    )
    code = f"ONCE{unique().upper()}"
    codes.create(params={**base, "code": code})
    err = refused(lambda: codes.create(params={**base, "code": code}), "code", "already exists")
    assert err.code == "resource_already_exists"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        codes.retrieve("promo_missing")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such promotion_code: 'promo_missing'"


def test_discounts_apply_and_redeem(
    module_client: stripe.StripeClient, module_sandbox: SandboxServer
) -> None:
    """The functions Checkout prices with: amounts, restrictions, limits, expiry on the clock."""
    client, sandbox = module_client, module_sandbox
    state = sandbox.state
    quarter = client.v1.coupons.create(params={"percent_off": 25.5, "max_redemptions": 2})
    five = client.v1.coupons.create(params={"amount_off": 500, "currency": "eur"})
    applied = sandbox.call(lambda: state.apply_discount(1999, "eur", coupon=quarter.id))
    assert (applied.amount, applied.coupon, applied.promotion_code) == (510, quarter.id, None)  # 509.745
    assert sandbox.call(lambda: state.apply_discount(300, "eur", coupon=five.id)).amount == 300
    with pytest.raises(StripeError, match="cannot be applied to a payment in usd") as err:
        sandbox.call(lambda: state.apply_discount(1000, "usd", coupon=five.id))
    assert err.value.param == "discounts[0][coupon]"

    code = f"MIN{unique().upper()}"
    promo = client.v1.promotion_codes.create(
        params={
            "coupon": quarter.id,
            "code": code,
            "restrictions": {"minimum_amount": 1000, "minimum_amount_currency": "eur"},
        }
    )
    assert sandbox.call(lambda: state.find_promotion_code(code.lower()))["id"] == promo.id
    assert (
        sandbox.call(lambda: state.promotion_code_error("NOT-A-CODE", 5000, "eur", None))
        == "This code is invalid."
    )
    assert "at least 10.00 eur" in str(
        sandbox.call(lambda: state.promotion_code_error(code, 999, "eur", None))
    )
    assert sandbox.call(lambda: state.promotion_code_error(code, 1000, "eur", None)) is None
    by_code = sandbox.call(lambda: state.apply_discount(1000, "eur", promotion_code=promo.id))
    assert (by_code.amount, by_code.coupon, by_code.promotion_code) == (255, quarter.id, promo.id)
    sandbox.call(lambda: state.redeem_discount(by_code))
    sandbox.call(lambda: state.redeem_discount(by_code))
    spent = client.v1.coupons.retrieve(quarter.id)
    assert (spent.times_redeemed, spent.valid) == (2, False)
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 2
    assert "no longer valid" in str(sandbox.call(lambda: state.promotion_code_error(code, 5000, "eur", None)))

    expiring = client.v1.coupons.create(params={"percent_off": 5, "redeem_by": int(time.time()) + 120})
    timed = client.v1.promotion_codes.create(
        params={"coupon": expiring.id, "expires_at": int(time.time()) + 60}
    )
    assert sandbox.call(lambda: state.promotion_code_error(timed.code, 5000, "eur", None)) is None
    sandbox.control("POST", "clock/advance", seconds=90)
    assert "has expired" in str(
        sandbox.call(lambda: state.promotion_code_error(timed.code, 5000, "eur", None))
    )
    sandbox.control("POST", "clock/advance", seconds=60)
    assert client.v1.coupons.retrieve(expiring.id).valid is False


def test_discount_objects_conform(module_client: stripe.StripeClient, module_sandbox: SandboxServer) -> None:
    coupon = module_client.v1.coupons.create(params={"percent_off": 12, "redeem_by": int(time.time()) + 9999})
    promo = module_client.v1.promotion_codes.create(params={"coupon": coupon.id})
    module_client.v1.coupons.update(coupon.id, params={"name": "Twelve"})
    objects = [
        raw_get(module_sandbox, f"/v1/coupons/{coupon.id}"),
        raw_get(module_sandbox, "/v1/coupons?limit=5"),
        raw_get(module_sandbox, f"/v1/promotion_codes/{promo.id}"),
        raw_get(module_sandbox, "/v1/promotion_codes?limit=5"),
        raw_get(
            module_sandbox,
            "/v1/events?types[]=coupon.created&types[]=coupon.updated&types[]=promotion_code.created",
        ),
    ]
    assert sorted({p for obj in objects for p in conformance_problems(obj)}) == []
