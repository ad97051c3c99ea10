"""Checkout Session parameters the sandbox simulates, each shown by its effect through the SDK.

The hosted page is driven with plain form posts here (it needs no JavaScript); the Chromium test
of the same page is in test_sandbox_hosted_browser.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from tests.sandbox.conftest import session_params
from tests.support.sandbox_server import SandboxServer

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123", "name": "Jenny Rosen"}


def _page(url: str, language: str | None = None) -> httpx.Response:
    headers = {"Accept-Language": language} if language else {}
    return httpx.get(url, headers=headers, timeout=30)


def _post(url: str, language: str | None = None, **form: str) -> httpx.Response:
    headers = {"Accept-Language": language} if language else {}
    return httpx.post(url, data=form, headers=headers, timeout=30)


def _events(sandbox: SandboxServer, object_id: str) -> list[str]:
    return [e["type"] for e in sandbox.state.events.dump() if e["data"]["object"]["id"] == object_id]


def test_manual_capture(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(payment_intent_data={"capture_method": "manual"})
    )
    assert session.payment_method_types == ["card"]  # a bank debit cannot hold funds
    paid = sandbox.control("POST", f"checkout/sessions/{session.id}/pay")
    assert paid["status"] == "succeeded"
    done = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    assert (done.status, done.payment_status) == ("complete", "unpaid")  # held, not yet captured
    pi = done.payment_intent
    assert isinstance(pi, stripe.PaymentIntent)
    assert (pi.status, pi.capture_method) == ("requires_capture", "manual")
    assert (pi.amount_capturable, pi.amount_received) == (2500, 0)
    charge = pi.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.status, charge.paid, charge.captured, charge.amount_captured) == (
        "succeeded",
        True,
        False,
        0,
    )
    assert charge.balance_transaction is None
    assert _events(sandbox, pi.id) == ["payment_intent.created", "payment_intent.amount_capturable_updated"]
    captured = client.v1.payment_intents.capture(pi.id, params={"statement_descriptor": "COINS HELD"})
    assert (captured.status, captured.amount_received, captured.statement_descriptor) == (
        "succeeded",
        2500,
        "COINS HELD",
    )
    # Captured: the session now reports paid, as Stripe's does (without a checkout.session event).
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    assert "checkout.session.async_payment_succeeded" not in _events(sandbox, session.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(
            params=session_params(
                payment_method_types=["card", "sepa_debit"], payment_intent_data={"capture_method": "manual"}
            )
        )
    assert err.value.param == "payment_method_types[1]"
    automatic = client.v1.checkout.sessions.create(
        params=session_params(payment_intent_data={"capture_method": "automatic_async"})
    )
    sandbox.control("POST", f"checkout/sessions/{automatic.id}/pay")
    pi2 = client.v1.checkout.sessions.retrieve(
        automatic.id, params={"expand": ["payment_intent"]}
    ).payment_intent
    assert isinstance(pi2, stripe.PaymentIntent)
    assert (pi2.status, pi2.capture_method, pi2.amount_received) == ("succeeded", "automatic_async", 2500)


def test_payment_intent_data_reaches_the_payment(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            payment_intent_data={
                "receipt_email": "receipts@example.com",
                "statement_descriptor_suffix": "coins",
            }
        )
    )
    page = _page(str(session.url)).text
    assert "Coin pack" in page  # line_items[0][price_data][product_data][description]
    assert 'href="https://shop.example/checkout/cancel"' in page  # cancel_url: the Back link
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay")
    pi = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent"]}
    ).payment_intent
    assert isinstance(pi, stripe.PaymentIntent)
    assert pi.receipt_email == "receipts@example.com"
    assert pi.statement_descriptor_suffix == "coins"
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    assert charge.calculated_statement_descriptor == "STOREFRONT SANDBOX* CO"

    other = client.v1.checkout.sessions.create(
        params=session_params(payment_intent_data={"statement_descriptor": "Coins shop"})
    )
    sandbox.control("POST", f"checkout/sessions/{other.id}/pay")
    pi = client.v1.checkout.sessions.retrieve(other.id, params={"expand": ["payment_intent"]}).payment_intent
    assert isinstance(pi, stripe.PaymentIntent)
    assert pi.statement_descriptor == "Coins shop"
    assert client.v1.charges.retrieve(str(pi.latest_charge)).calculated_statement_descriptor == "COINS SHOP"


def _adjustable(**bounds: Any) -> dict[str, Any]:
    item = session_params()["line_items"][0]
    return session_params(line_items=[{**item, "adjustable_quantity": {"enabled": True, **bounds}}])


def test_adjustable_quantity_bounds(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(params=_adjustable(minimum=1, maximum=5))
    item = client.v1.checkout.sessions.line_items.list(session.id).data[0]
    assert item.adjustable_quantity is not None
    bounds = item.adjustable_quantity
    assert (bounds.enabled, bounds.minimum, bounds.maximum) == (True, 1, 5)
    field = f"quantity_{item.id}"
    assert f'name="{field}"' in _page(str(session.url)).text

    changed = _post(str(session.url), intent="update", **{field: "4"})
    assert changed.status_code == 200
    assert "€50.00" in changed.text
    again = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert (again.amount_subtotal, again.amount_total) == (5000, 5000)
    assert again.line_items is not None
    line = again.line_items.data[0]
    assert (line.quantity, line.amount_total) == (4, 5000)

    too_many = _post(str(session.url), intent="pay", email="b@example.com", **CARD, **{field: "6"})
    assert too_many.status_code == 400
    assert client.v1.checkout.sessions.retrieve(session.id).amount_total == 5000
    paid = _post(str(session.url), intent="pay", email="b@example.com", **CARD, **{field: "3"})
    assert paid.status_code == 303
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert done.amount_total == 3750
    assert isinstance(done.payment_intent, stripe.PaymentIntent)
    assert done.payment_intent.amount == 3750

    no_bounds = client.v1.checkout.sessions.create(params=_adjustable())
    default = client.v1.checkout.sessions.line_items.list(no_bounds.id).data[0].adjustable_quantity
    assert default is not None
    assert (default.minimum, default.maximum) == (0, 99)
    for wrong, param in (({"minimum": 3}, "line_items[0][quantity]"), ({"minimum": 5, "maximum": 4}, None)):
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.checkout.sessions.create(params=_adjustable(**wrong))
        assert err.value.param == (param or "line_items[0][adjustable_quantity][minimum]")


def test_session_fields_the_page_reads(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            submit_type="donate",
            billing_address_collection="required",
            ui_mode="hosted",
            currency="eur",
            expand=["line_items"],
        )
    )
    assert (session.submit_type, session.billing_address_collection, session.ui_mode) == (
        "donate",
        "required",
        "hosted",
    )
    assert session.line_items is not None  # expand
    page = _page(str(session.url)).text
    assert 'data-testid="pay">Donate</button>' in page
    for field in ("address_line1", "address_city", "address_postal_code", "address_country"):
        assert f'name="{field}"' in page
    missing = _post(str(session.url), intent="pay", email="b@example.com", **CARD)
    assert missing.status_code == 400
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    address = {
        "address_line1": "1 Main St",
        "address_city": "Berlin",
        "address_postal_code": "10115",
        "address_country": "DE",
    }
    assert _post(str(session.url), intent="pay", email="b@example.com", **CARD, **address).status_code == 303
    done = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    assert done.customer_details is not None
    stored = done.customer_details.address
    assert stored is not None
    assert (stored.line1, stored.city, stored.postal_code, stored.country, stored.line2) == (
        "1 Main St",
        "Berlin",
        "10115",
        "DE",
        None,
    )
    assert isinstance(done.payment_intent, stripe.PaymentIntent)
    charge = done.payment_intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.billing_details.address is not None
    assert charge.billing_details.address.city == "Berlin"

    auto = client.v1.checkout.sessions.create(params=session_params(billing_address_collection="auto"))
    auto_page = _page(str(auto.url)).text
    assert 'name="address_country"' in auto_page
    assert 'name="address_line1"' not in auto_page
    plain = _page(str(client.v1.checkout.sessions.create(params=session_params()).url)).text
    assert 'name="address_country"' not in plain
    assert 'data-testid="pay">Pay</button>' in plain

    item = session_params()["line_items"][0]
    decimal = {**item, "price_data": {**item["price_data"], "unit_amount_decimal": "1300"}}
    del decimal["price_data"]["unit_amount"]
    assert (
        client.v1.checkout.sessions.create(params=session_params(line_items=[decimal])).amount_total == 2600
    )
    recurring = {
        **item,
        "price_data": {**item["price_data"], "recurring": {"interval": "month", "interval_count": 1}},
    }
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(params=session_params(line_items=[recurring]))
    assert err.value.param == "line_items[0][price_data][recurring]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(params=session_params(currency="usd"))
    assert err.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(params=session_params(ui_mode="embedded"))
    assert err.value.param == "ui_mode"


@pytest.mark.parametrize(
    ("locale", "accept", "lang", "button"),
    [
        ("zh", "en-US,en;q=0.9", "zh-Hans", "支付"),
        ("auto", "fr-FR,zh-CN;q=0.8,en;q=0.5", "zh-Hans", "支付"),
        ("auto", "zh;q=0.3,en;q=0.9", "en", "Pay"),
        ("fr", "zh-CN", "en", "Pay"),
        (None, "zh-TW", "zh-Hans", "支付"),
    ],
)
def test_locale_picks_the_page_language(
    client: stripe.StripeClient, locale: str | None, accept: str, lang: str, button: str
) -> None:
    params = session_params(**({"locale": locale} if locale else {}))
    session = client.v1.checkout.sessions.create(params=params)
    page = _page(str(session.url), accept).text
    assert f'<html lang="{lang}">' in page
    assert f'data-testid="pay">{button}</button>' in page
    wrong = _post(str(session.url), accept, intent="pay", email="nope", **CARD)
    assert ("您的电子邮箱地址无效。" in wrong.text) is (lang == "zh-Hans")


def test_update_session_metadata(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = client.v1.checkout.sessions.create(params=session_params(metadata={"a": "1", "b": "2"}))
    updated = client.v1.checkout.sessions.update(
        session.id, params={"metadata": {"b": "", "c": "3"}, "expand": ["line_items"]}
    )
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    assert updated.line_items is not None
    assert client.v1.checkout.sessions.retrieve(session.id).metadata.to_dict() == {"a": "1", "c": "3"}
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay")
    cleared = client.v1.checkout.sessions.update(session.id, params={"metadata": ""})
    assert cleared.metadata.to_dict() == {}
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.update("cs_test_nope", params={"metadata": {"a": "1"}})
    assert err.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.update(
            session.id, params={"shipping_options": [{"shipping_rate": "shr_1"}]}
        )
    assert err.value.param == "shipping_options"


def test_list_and_retrieve_params(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    item = session_params()["line_items"][0]
    session = client.v1.checkout.sessions.create(params=session_params(line_items=[item, item, item]))
    listed = client.v1.checkout.sessions.list(params={"expand": ["data.line_items"]})
    assert listed.data[0].line_items is not None
    assert client.v1.checkout.sessions.list(params={"payment_link": "plink_1"}).data == []
    assert client.v1.checkout.sessions.list(params={"subscription": "sub_1"}).data == []
    assert client.v1.checkout.sessions.list(params={"customer": "cus_nobody"}).data == []
    items = client.v1.checkout.sessions.line_items.list(
        session.id, params={"limit": 2, "expand": ["data.price"]}
    )
    assert (len(items.data), items.has_more) == (2, True)
    rest = client.v1.checkout.sessions.line_items.list(
        session.id, params={"starting_after": items.data[-1].id}
    )
    assert len(rest.data) == 1
    before = client.v1.checkout.sessions.line_items.list(
        session.id, params={"ending_before": rest.data[0].id}
    )
    assert [i.id for i in before.data] == [i.id for i in items.data]

    expired = client.v1.checkout.sessions.expire(
        client.v1.checkout.sessions.create(params=session_params()).id, params={"expand": ["line_items"]}
    )
    assert expired.line_items is not None
    sandbox.control("POST", f"checkout/sessions/{session.id}/pay", card_number="4000000000000259")
    pi_id = str(client.v1.checkout.sessions.retrieve(session.id).payment_intent)
    pi = client.v1.payment_intents.retrieve(pi_id, params={"expand": ["latest_charge"]})
    assert isinstance(pi.latest_charge, stripe.Charge)
    charge = client.v1.charges.retrieve(pi.latest_charge.id, params={"expand": ["payment_intent"]})
    assert isinstance(charge.payment_intent, stripe.PaymentIntent)
    dispute_id = sandbox.state.disputes.dump()[0]["id"]
    dispute = client.v1.disputes.retrieve(dispute_id, params={"expand": ["charge"]})
    assert isinstance(dispute.charge, stripe.Charge)

    other = client.v1.checkout.sessions.create(params=session_params())
    sandbox.control("POST", f"checkout/sessions/{other.id}/pay")
    other_pi = str(client.v1.checkout.sessions.retrieve(other.id).payment_intent)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"payment_intent": other_pi, "currency": "usd"})
    assert err.value.param == "currency"
    refund = client.v1.refunds.create(
        params={"payment_intent": other_pi, "currency": "eur", "expand": ["charge"]}
    )
    assert isinstance(refund.charge, stripe.Charge)
    assert isinstance(
        client.v1.refunds.retrieve(refund.id, params={"expand": ["charge"]}).charge, stripe.Charge
    )

    events = client.v1.events.list(params={"limit": 3}).data
    newer = client.v1.events.list(params={"ending_before": events[-1].id}).data
    assert [e.id for e in newer] == [e.id for e in events[:-1]]
    # Nothing on an event is expandable, at Stripe as here.
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.events.list(params={"expand": ["data.request"]})
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.events.retrieve(events[0].id, params={"expand": ["data"]})


def test_checkout_customers(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    home = {"line1": "1 Main St", "line2": "Flat 2", "postal_code": "10115", "state": "BE", "city": "Berlin"}
    customer = client.v1.customers.create(
        params={
            "email": "returning@example.com",
            "name": "Old Name",
            "description": "a returning buyer",
            "address": {**home, "country": "DE"},
            "shipping": {"name": "Old Name", "address": {**home, "country": "DE"}},
            "expand": ["default_source"],
        }
    )
    assert customer.description == "a returning buyer"
    assert (
        client.v1.customers.update(customer.id, params={"description": "", "expand": []}).description is None
    )
    assert client.v1.customers.retrieve(customer.id, params={"expand": []}).address is not None
    assert client.v1.customers.list(params={"expand": ["data.default_source"]}).data[0].id == customer.id
    found = client.v1.customers.search(params={"query": "email:'returning@example.com'", "expand": []})
    assert [c.id for c in found.data] == [customer.id]
    session = client.v1.checkout.sessions.create(
        params=session_params(
            customer=customer.id,
            customer_update={"name": "auto", "address": "auto"},
            billing_address_collection="required",
        )
    )
    assert session.customer == customer.id
    assert 'value="returning@example.com"' in _page(str(session.url)).text
    address = {
        "address_line1": "9 New Rd",
        "address_city": "Paris",
        "address_postal_code": "75001",
        "address_country": "FR",
    }
    form = {**CARD, "name": "New Name", **address}
    assert _post(str(session.url), intent="pay", email="", **form).status_code == 303
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["customer", "payment_intent"]})
    assert isinstance(done.customer, stripe.Customer)
    assert done.customer.name == "New Name"
    assert done.customer.address is not None
    assert (done.customer.address.city, done.customer.address.line2) == ("Paris", None)
    assert isinstance(done.payment_intent, stripe.PaymentIntent)
    assert done.payment_intent.customer == customer.id
    assert client.v1.charges.retrieve(str(done.payment_intent.latest_charge)).customer == customer.id
    assert done.customer_details is not None
    assert done.customer_details.email == "returning@example.com"

    made = client.v1.checkout.sessions.create(params=session_params(customer_creation="always"))
    sandbox.control("POST", f"checkout/sessions/{made.id}/pay", email="new@example.com")
    new = client.v1.checkout.sessions.retrieve(made.id)
    assert made.customer_creation == "always"
    assert isinstance(new.customer, str)
    assert client.v1.customers.retrieve(new.customer).email == "new@example.com"
    guest = client.v1.checkout.sessions.create(params=session_params(customer_creation="if_required"))
    sandbox.control("POST", f"checkout/sessions/{guest.id}/pay")
    assert client.v1.checkout.sessions.retrieve(guest.id).customer is None
    by_customer = client.v1.checkout.sessions.list(params={"customer": customer.id}).data
    assert [s.id for s in by_customer] == [session.id]
    paid_pi = done.payment_intent.id
    assert [p.id for p in client.v1.payment_intents.list(params={"customer": customer.id}).data] == [paid_pi]
    charges = client.v1.charges.list(params={"customer": customer.id}).data
    assert [c.payment_intent for c in charges] == [paid_pi]
    assert client.v1.charges.list(params={"transfer_group": "group_none"}).data == []

    for params, param in (
        ({"customer": "cus_missing"}, "customer"),
        ({"customer": customer.id, "customer_email": "x@example.com"}, "customer_email"),
        ({"customer": customer.id, "customer_creation": "always"}, "customer_creation"),
        ({"customer_update": {"name": "auto"}}, "customer_update"),
        ({"customer": customer.id, "customer_update": {"shipping": "auto"}}, "customer_update[shipping]"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.checkout.sessions.create(params=session_params(**params))
        assert err.value.param == param


def test_checkout_discounts(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    coupon = client.v1.coupons.create(params={"percent_off": 10, "duration": "once", "name": "Ten off"})
    promo = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SAVE10", "max_redemptions": 2}
    )
    fixed = client.v1.checkout.sessions.create(params=session_params(discounts=[{"coupon": coupon.id}]))
    assert (fixed.amount_subtotal, fixed.amount_total) == (2500, 2250)
    assert fixed.total_details is not None
    assert fixed.total_details.amount_discount == 250
    assert [d.coupon for d in fixed.discounts or []] == [coupon.id]
    by_code = client.v1.checkout.sessions.create(
        params=session_params(discounts=[{"promotion_code": promo.id}], expand=["line_items"])
    )
    assert [d.promotion_code for d in by_code.discounts or []] == [promo.id]
    assert by_code.line_items is not None
    assert by_code.line_items.data[0].amount_discount == 250
    sandbox.control("POST", f"checkout/sessions/{by_code.id}/pay")
    pi = client.v1.checkout.sessions.retrieve(
        by_code.id, params={"expand": ["payment_intent"]}
    ).payment_intent
    assert isinstance(pi, stripe.PaymentIntent)
    assert pi.amount == 2250
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1

    typed = client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    assert typed.allow_promotion_codes is True
    page = _page(str(typed.url)).text
    assert 'name="promotion_code"' in page
    assert 'name="promotion_code"' not in _page(str(fixed.url)).text
    wrong = _post(str(typed.url), intent="apply_code", promotion_code="NOPE")
    assert wrong.status_code == 400
    assert "This code is invalid." in wrong.text
    applied = _post(str(typed.url), intent="apply_code", promotion_code="save10")
    assert applied.status_code == 200
    assert "€22.50" in applied.text
    assert client.v1.checkout.sessions.retrieve(typed.id).amount_total == 2250
    removed = _post(str(typed.url), intent="remove_code")
    assert "€25.00" in removed.text
    assert client.v1.checkout.sessions.retrieve(typed.id).discounts == []
    _post(str(typed.url), intent="apply_code", promotion_code="SAVE10")
    assert _post(str(typed.url), intent="pay", email="b@example.com", **CARD).status_code == 303
    done = client.v1.checkout.sessions.retrieve(typed.id)
    assert (done.amount_total, done.payment_status) == (2250, "paid")
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 2
    spent = client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    assert (
        "maximum number of redemptions"
        in _post(str(spent.url), intent="apply_code", promotion_code="SAVE10").text
    )
    chinese = _post(str(spent.url), "zh-CN", intent="apply_code", promotion_code="SAVE10").text
    assert "此优惠码不能用于这笔购买。" in chinese

    for params, param in (
        ({"discounts": [{"coupon": "nope"}]}, "discounts[0][coupon]"),
        ({"discounts": [{"coupon": coupon.id}], "allow_promotion_codes": True}, "discounts"),
        ({"discounts": [{"coupon": coupon.id, "promotion_code": promo.id}]}, "discounts[0]"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.checkout.sessions.create(params=session_params(**params))
        assert err.value.param == param


def test_checkout_tax(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    item = session_params()["line_items"][0]
    rate = client.v1.tax_rates.create(
        params={"display_name": "VAT", "percentage": 20, "inclusive": False, "expand": []}
    )
    assert client.v1.tax_rates.retrieve(rate.id, params={"expand": []}).percentage == 20
    assert client.v1.tax_rates.update(rate.id, params={"expand": []}).id == rate.id
    assert client.v1.tax_rates.list(params={"expand": []}).data
    with_rates = client.v1.checkout.sessions.create(
        params=session_params(line_items=[{**item, "tax_rates": [rate.id]}], expand=["line_items"])
    )
    assert (with_rates.amount_subtotal, with_rates.amount_total) == (2500, 3000)
    assert with_rates.total_details is not None
    assert with_rates.total_details.amount_tax == 500
    assert with_rates.line_items is not None
    assert with_rates.line_items.data[0].amount_tax == 500
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(
            params=session_params(line_items=[{**item, "tax_rates": ["txr_no"]}])
        )
    assert err.value.param == "line_items[0][tax_rates][0]"

    product = client.v1.products.create(params={"name": "Coins"})
    inclusive = {
        **item,
        "price_data": {
            "currency": "eur",
            "unit_amount": 1190,
            "product": product.id,
            "tax_behavior": "inclusive",
        },
    }
    session = client.v1.checkout.sessions.create(
        params=session_params(line_items=[inclusive], automatic_tax={"enabled": True})
    )
    assert session.automatic_tax.enabled is True
    assert session.automatic_tax.status == "requires_location_inputs"
    page = _page(str(session.url)).text
    assert 'name="address_country"' in page  # automatic tax asks where the buyer is
    updated = _post(str(session.url), intent="update", address_country="DE")
    assert "€3.80" in updated.text  # 19% contained in €23.80
    priced = client.v1.checkout.sessions.retrieve(session.id)
    assert (priced.amount_total, priced.total_details and priced.total_details.amount_tax) == (2380, 380)
    assert priced.automatic_tax.status == "complete"
    form = {**CARD, "address_country": "FR"}
    assert _post(str(session.url), intent="pay", email="b@example.com", **form).status_code == 303
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert done.total_details is not None
    assert (done.amount_total, done.total_details.amount_tax) == (2380, 397)  # 20% inside €23.80
    assert done.line_items is not None
    assert done.line_items.data[0].description == "Coins"

    exclusive = client.v1.checkout.sessions.create(params=session_params(automatic_tax={"enabled": True}))
    _post(str(exclusive.url), intent="pay", email="b@example.com", **{**CARD, "address_country": "US"})
    untaxed = client.v1.checkout.sessions.retrieve(exclusive.id)
    assert (untaxed.amount_total, untaxed.status) == (2500, "complete")  # no US registration
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(
            params=session_params(
                line_items=[{**item, "tax_rates": [rate.id]}], automatic_tax={"enabled": True}
            )
        )
    assert err.value.param == "line_items[0][tax_rates]"


def test_catalog_fields_round_trip(client: stripe.StripeClient) -> None:
    """Fields the catalogue and tax rates only keep and return (their effect is being served back)."""
    fields = {
        "images": ["https://shop.example/coins.png"],
        "shippable": False,
        "statement_descriptor": "COINS",
        "tax_code": "txcd_10000000",
        "unit_label": "pack",
    }
    product = client.v1.products.create(params={"name": "Coins", **fields})
    assert {k: product[k] for k in fields} == fields
    changed = client.v1.products.update(
        product.id, params={"images": ["https://shop.example/b.png"], "shippable": True, "unit_label": "box"}
    )
    assert (changed.images, changed.shippable, changed.unit_label) == (
        ["https://shop.example/b.png"],
        True,
        "box",
    )
    updated = client.v1.products.update(
        product.id, params={"statement_descriptor": "PACKS", "tax_code": "txcd_20030000"}
    )
    assert (updated.statement_descriptor, updated.tax_code) == ("PACKS", "txcd_20030000")
    assert [p.id for p in client.v1.products.list(params={"shippable": True}).data] == [product.id]
    price = client.v1.prices.create(
        params={
            "currency": "eur",
            "unit_amount": 500,
            "product_data": {
                "name": "Gems",
                "statement_descriptor": "GEMS",
                "tax_code": "txcd_10000000",
                "unit_label": "gem",
            },
        }
    )
    made = client.v1.products.retrieve(str(price.product))
    assert (made.statement_descriptor, made.tax_code, made.unit_label) == ("GEMS", "txcd_10000000", "gem")
    listed = client.v1.prices.list(params={"recurring": {"usage_type": "licensed", "meter": "m_1"}})
    assert listed.data == []  # one-time prices have no recurring usage


def test_a_total_changed_by_the_address_is_shown_before_it_is_charged(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    """Regression: paying with a country chosen after the total was shown charged the new total
    (tax added) though the page had said the old one; Stripe's page never charges a total unseen."""
    session = client.v1.checkout.sessions.create(params=session_params(automatic_tax={"enabled": True}))
    page = _page(str(session.url)).text
    assert 'name="total_seen" value="2500"' in page
    form = {**CARD, "address_country": "AT", "total_seen": "2500"}
    refused = _post(str(session.url), "zh-CN", intent="pay", email="b@example.com", **form)
    assert refused.status_code == 400
    assert "应付总额已随您的地址更新" in refused.text
    assert 'name="total_seen" value="3000"' in refused.text  # now showing Austria's 20 % on top
    still = client.v1.checkout.sessions.retrieve(session.id)
    assert (still.status, still.payment_intent) == ("open", None)  # nothing charged
    paid = _post(str(session.url), intent="pay", email="b@example.com", **{**form, "total_seen": "3000"})
    assert paid.status_code == 303
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.amount_total) == ("complete", 3000)
