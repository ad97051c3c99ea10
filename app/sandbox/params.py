"""Parameter specs for the endpoints the sandbox implements (Stripe's names, limits and enums)."""

from __future__ import annotations

import re
from decimal import Decimal

from .forms import (
    EXPAND,
    Array,
    Bool,
    Clearable,
    Enum,
    Hash,
    Int,
    Metadata,
    Number,
    RangeOrInt,
    Spec,
    Str,
    Unsimulated,
    Url,
    refused,
)

LOCALES = [
    "auto",
    "bg",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "en-GB",
    "es",
    "es-419",
    "et",
    "fi",
    "fil",
    "fr",
    "fr-CA",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "lt",
    "lv",
    "ms",
    "mt",
    "nb",
    "nl",
    "pl",
    "pt",
    "pt-BR",
    "ro",
    "ru",
    "sk",
    "sl",
    "sv",
    "th",
    "tr",
    "vi",
    "zh",
    "zh-HK",
    "zh-TW",
]

# Every method type Stripe's API accepts here; the sandbox simulates the first three.
SIMULATED_METHODS = ("card", "sepa_debit", "us_bank_account")
KNOWN_METHODS: tuple[str, ...] = (
    *SIMULATED_METHODS,
    *[
        "acss_debit",
        "affirm",
        "afterpay_clearpay",
        "alipay",
        "amazon_pay",
        "au_becs_debit",
        "bacs_debit",
        "bancontact",
        "blik",
        "boleto",
        "cashapp",
        "customer_balance",
        "eps",
        "fpx",
        "giropay",
        "grabpay",
        "ideal",
        "klarna",
        "konbini",
        "link",
        "mobilepay",
        "multibanco",
        "oxxo",
        "p24",
        "paynow",
        "paypal",
        "pix",
        "promptpay",
        "revolut_pay",
        "swish",
        "twint",
        "wechat_pay",
        "zip",
    ],
)

MAX_UNIT_AMOUNT = 99_999_999

# Each operation's spec is its table of parameters: a parameter either has a real spec (the
# sandbox simulates it as Stripe does; tests/sandbox/test_sandbox_param_table.py names the test
# proving each) or is `refused(...)`: Stripe accepts it but the sandbox answers a 400 naming it,
# because ignoring it would let a test pass where Stripe behaves otherwise.

PRICE_DATA = Hash(
    {
        "currency": Str(required=True),
        "unit_amount": Int(minimum=0, maximum=MAX_UNIT_AMOUNT),
        "unit_amount_decimal": Str(),
        "product_data": Hash(
            {
                "name": Str(required=True),
                "description": Str(max_length=40000),
                **refused("images", "metadata", "tax_code", "unit_label"),
            }
        ),
        "recurring": Hash(
            {
                "interval": Enum(("day", "month", "week", "year"), required=True),
                "interval_count": Int(minimum=1),
            }
        ),
        "product": Str(),
        "tax_behavior": Enum(("exclusive", "inclusive", "unspecified")),
    }
)

LINE_ITEM = Hash(
    {
        "price": Str(),
        "price_data": PRICE_DATA,
        "quantity": Int(minimum=1, maximum=999_999),
        "adjustable_quantity": Hash(
            {
                "enabled": Bool(required=True),
                "maximum": Int(minimum=1, maximum=999_999),
                "minimum": Int(minimum=0, maximum=999_998),
            }
        ),
        "tax_rates": Array(Str(), max_items=5),
        **refused("dynamic_tax_rates", "metadata"),
    }
)

SESSION_CREATE: dict[str, Spec] = {
    "mode": Enum(("payment", "setup", "subscription"), required=True),
    "line_items": Array(LINE_ITEM, max_items=100),
    "success_url": Url(required=True),
    "cancel_url": Url(),
    "client_reference_id": Str(max_length=200),
    "customer_email": Str(max_length=800),
    "metadata": Metadata(),
    "expires_at": Int(),
    "locale": Enum(tuple(LOCALES)),
    "payment_method_types": Array(Enum(KNOWN_METHODS)),
    "currency": Str(),
    "submit_type": Enum(("auto", "book", "donate", "pay", "subscribe")),
    "billing_address_collection": Enum(("auto", "required")),
    "ui_mode": Enum(("custom", "embedded", "hosted")),
    "payment_intent_data": Hash(
        {
            "description": Str(max_length=1000),
            "metadata": Metadata(),
            "receipt_email": Str(),
            "statement_descriptor": Str(max_length=22),
            "statement_descriptor_suffix": Str(max_length=22),
            "capture_method": Enum(("automatic", "automatic_async", "manual")),
            **refused(
                "application_fee_amount",
                "on_behalf_of",
                "setup_future_usage",
                "shipping",
                "transfer_data",
                "transfer_group",
            ),
        }
    ),
    "customer": Str(),
    "customer_creation": Enum(("always", "if_required")),
    "customer_update": Hash(
        {
            "address": Enum(("auto", "never")),
            "name": Enum(("auto", "never")),
            **refused("shipping"),
        }
    ),
    "allow_promotion_codes": Bool(),
    "discounts": Array(Hash({"coupon": Str(), "promotion_code": Str()}), max_items=1),
    "automatic_tax": Hash({"enabled": Bool(required=True), **refused("liability")}),
    "expand": EXPAND,
    **refused(
        "adaptive_pricing",
        "after_expiration",
        "allowed_payment_method_types",
        "branding_settings",
        "consent_collection",
        "custom_fields",
        "custom_text",
        "customer_account",
        "excluded_payment_method_types",
        "integration_identifier",
        "invoice_creation",
        "managed_payments",
        "name_collection",
        "optional_items",
        "origin_context",
        "payment_method_collection",
        "payment_method_configuration",
        "payment_method_data",
        "payment_method_options",
        "permissions",
        "phone_number_collection",
        "redirect_on_completion",
        "return_url",
        "saved_payment_method_options",
        "setup_intent_data",
        "shipping_address_collection",
        "shipping_options",
        "subscription_data",
        "tax_id_collection",
        "wallet_options",
    ),
}

SESSION_UPDATE: dict[str, Spec] = {
    "metadata": Metadata(patch=True),
    "expand": EXPAND,
    **refused("collected_information", "line_items", "payment_intent_data", "shipping_options"),
}

SESSION_LIST: dict[str, Spec] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "payment_intent": Str(),
    "status": Enum(("complete", "expired", "open")),
    "customer": Str(),
    "customer_details": Hash({"email": Str(required=True)}),
    "created": RangeOrInt(),
    "payment_link": Str(),
    "subscription": Str(),
    "expand": EXPAND,
    **refused("customer_account"),
}

PAGE: dict[str, Spec] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "expand": EXPAND,
}

RETRIEVE: dict[str, Spec] = {"expand": EXPAND}
# Stripe's deletes take no parameters (not even `expand`).
DELETE: dict[str, Spec] = {}

PI_RETRIEVE: dict[str, Spec] = {"expand": EXPAND, **refused("client_secret")}

REFUND_CREATE: dict[str, Spec] = {
    "payment_intent": Str(),
    "charge": Str(),
    "amount": Int(minimum=1),
    "reason": Enum(("duplicate", "fraudulent", "requested_by_customer")),
    "metadata": Metadata(),
    "currency": Str(),
    "expand": EXPAND,
    **refused("customer", "instructions_email", "origin", "refund_application_fee", "reverse_transfer"),
}

EVENT_LIST: dict[str, Spec] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "type": Str(),
    "types": Array(Str(), max_items=20),
    "created": RangeOrInt(),
    "delivery_success": Bool(),
    "expand": EXPAND,
}

# ------------------------------------------------------------- catalogue, customers, discounts, tax
# Every parameter Stripe's request schema names for these operations appears here: simulated, or
# `Unsimulated` (refused with a 400 naming it), so none is silently ignored.

LIST_PAGE: dict[str, Spec] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "created": RangeOrInt(),
    "expand": EXPAND,
}

SEARCH: dict[str, Spec] = {
    "query": Str(required=True, max_length=5000),
    "limit": Int(minimum=1, maximum=100),
    "page": Str(),
    "expand": EXPAND,
}

_FEATURES = Array(Hash({"name": Str(required=True, max_length=80)}), max_items=15)
_PACKAGE = Unsimulated()

PRODUCT_CREATE: dict[str, Spec] = {
    "name": Str(required=True),
    "id": Str(),
    "active": Bool(),
    "description": Str(max_length=40000),
    "images": Array(Str(max_length=2048), max_items=8),
    "marketing_features": _FEATURES,
    "features": _FEATURES,  # the 2023 name of `marketing_features`
    "metadata": Metadata(),
    "shippable": Bool(),
    "statement_descriptor": Str(max_length=22),
    "tax_code": Str(),
    "unit_label": Str(max_length=12),
    "url": Str(),
    "package_dimensions": _PACKAGE,
    "default_price_data": Hash(
        {
            "currency": Str(required=True),
            "unit_amount": Int(minimum=0, maximum=MAX_UNIT_AMOUNT),
            "unit_amount_decimal": Str(),
            "tax_behavior": Enum(("exclusive", "inclusive", "unspecified")),
            "currency_options": Unsimulated(),
            "recurring": Unsimulated(),
            "custom_unit_amount": Unsimulated(),
            "metadata": Metadata(),
        }
    ),
    "type": Enum(("good", "service")),
    **refused("tax_details"),
    "expand": EXPAND,
}

PRODUCT_UPDATE: dict[str, Spec] = {
    "name": Str(),
    "active": Bool(),
    "default_price": Str(),
    "description": Clearable(Str(max_length=40000)),
    "images": Clearable(Array(Str(max_length=2048), max_items=8)),
    "marketing_features": Clearable(_FEATURES),
    "features": Clearable(_FEATURES),
    "metadata": Metadata(patch=True),
    "shippable": Bool(),
    "statement_descriptor": Str(max_length=22),
    "tax_code": Clearable(Str()),
    "unit_label": Clearable(Str(max_length=12)),
    "url": Clearable(Str()),
    "package_dimensions": _PACKAGE,
    **refused("tax_details"),
    "expand": EXPAND,
}

PRODUCT_LIST: dict[str, Spec] = {
    **LIST_PAGE,
    "active": Bool(),
    "ids": Array(Str()),
    "shippable": Bool(),
    "url": Str(),
    "type": Enum(("good", "service")),
}

TAX_BEHAVIOR = Enum(("exclusive", "inclusive", "unspecified"))

PRICE_CREATE: dict[str, Spec] = {
    "currency": Str(required=True),
    "unit_amount": Int(minimum=0, maximum=MAX_UNIT_AMOUNT),
    "unit_amount_decimal": Str(),
    "product": Str(),
    "product_data": Hash(
        {
            "name": Str(required=True),
            "id": Str(),
            "active": Bool(),
            "metadata": Metadata(),
            "statement_descriptor": Str(max_length=22),
            "tax_code": Str(),
            "unit_label": Str(max_length=12),
        }
    ),
    "active": Bool(),
    "billing_scheme": Enum(("per_unit", "tiered")),
    "lookup_key": Str(max_length=200),
    "transfer_lookup_key": Bool(),
    "metadata": Metadata(),
    "nickname": Str(),
    "tax_behavior": TAX_BEHAVIOR,
    "currency_options": Unsimulated(),
    "custom_unit_amount": Unsimulated(),
    "recurring": Unsimulated(),
    "tiers": Unsimulated(),
    "tiers_mode": Unsimulated(),
    "transform_quantity": Unsimulated(),
    "expand": EXPAND,
}

PRICE_UPDATE: dict[str, Spec] = {
    "active": Bool(),
    "lookup_key": Clearable(Str(max_length=200)),
    "transfer_lookup_key": Bool(),
    "metadata": Metadata(patch=True),
    "nickname": Clearable(Str()),
    "tax_behavior": TAX_BEHAVIOR,
    "currency_options": Unsimulated(),
    "expand": EXPAND,
}

PRICE_LIST: dict[str, Spec] = {
    **LIST_PAGE,
    "active": Bool(),
    "currency": Str(),
    "lookup_keys": Array(Str(), max_items=10),
    "product": Str(),
    "type": Enum(("one_time", "recurring")),
    "recurring": Hash(
        {
            "interval": Enum(("day", "month", "week", "year")),
            "usage_type": Enum(("licensed", "metered")),
            "meter": Str(),
        }
    ),
}

_ADDRESS = Hash(
    {
        "city": Str(max_length=200),
        "country": Str(max_length=2),
        "line1": Str(max_length=200),
        "line2": Str(max_length=200),
        "postal_code": Str(max_length=20),
        "state": Str(max_length=200),
    }
)
_SHIPPING = Hash({"address": _ADDRESS, "name": Str(required=True), "phone": Str()})

CUSTOMER_CREATE: dict[str, Spec] = {
    "email": Str(max_length=512),
    "name": Str(max_length=256),
    "phone": Str(max_length=20),
    "description": Str(),
    "address": _ADDRESS,
    "shipping": _SHIPPING,
    "metadata": Metadata(),
    "preferred_locales": Array(Str(), max_items=10),
    "tax_exempt": Enum(("exempt", "none", "reverse")),
    "invoice_prefix": Str(max_length=12),
    "balance": Unsimulated(),
    "cash_balance": Unsimulated(),
    "coupon": Unsimulated(),
    "promotion_code": Unsimulated(),
    "invoice_settings": Unsimulated(),
    "next_invoice_sequence": Unsimulated(),
    "payment_method": Unsimulated(),
    "source": Unsimulated(),
    "tax": Unsimulated(),
    "tax_id_data": Unsimulated(),
    "test_clock": Unsimulated(),
    **refused("business_name", "individual_name", "validate"),
    "expand": EXPAND,
}

CUSTOMER_UPDATE: dict[str, Spec] = {
    "email": Clearable(Str(max_length=512)),
    "name": Clearable(Str(max_length=256)),
    "phone": Clearable(Str(max_length=20)),
    "description": Clearable(Str()),
    "address": Clearable(_ADDRESS),
    "shipping": Clearable(_SHIPPING),
    "metadata": Metadata(patch=True),
    "preferred_locales": Clearable(Array(Str(), max_items=10)),
    "tax_exempt": Clearable(Enum(("exempt", "none", "reverse"))),
    "invoice_prefix": Str(max_length=12),
    "balance": Unsimulated(),
    "bank_account": Unsimulated(),
    "card": Unsimulated(),
    "cash_balance": Unsimulated(),
    "coupon": Unsimulated(),
    "promotion_code": Unsimulated(),
    "default_alipay_account": Unsimulated(),
    "default_bank_account": Unsimulated(),
    "default_card": Unsimulated(),
    "default_source": Unsimulated(),
    "invoice_settings": Unsimulated(),
    "next_invoice_sequence": Unsimulated(),
    "source": Unsimulated(),
    "tax": Unsimulated(),
    **refused("business_name", "individual_name", "validate"),
    "expand": EXPAND,
}

CUSTOMER_LIST: dict[str, Spec] = {**LIST_PAGE, "email": Str(max_length=512), "test_clock": Unsimulated()}

COUPON_CREATE: dict[str, Spec] = {
    "id": Str(max_length=200),
    "percent_off": Number(minimum=Decimal("0.01"), maximum=Decimal(100)),
    "amount_off": Int(minimum=1),
    "currency": Str(),
    "duration": Enum(("forever", "once", "repeating")),
    "max_redemptions": Int(minimum=1),
    "redeem_by": Int(),
    "name": Str(max_length=40),
    "metadata": Metadata(),
    "applies_to": Unsimulated(),
    "currency_options": Unsimulated(),
    "duration_in_months": Unsimulated(),
    "expand": EXPAND,
}

COUPON_UPDATE: dict[str, Spec] = {
    "name": Clearable(Str(max_length=40)),
    "metadata": Metadata(patch=True),
    "currency_options": Unsimulated(),
    "expand": EXPAND,
}

PROMOTION_CODE_CREATE: dict[str, Spec] = {
    "promotion": Hash({"type": Enum(("coupon",), required=True), "coupon": Str()}),
    "coupon": Str(),  # the 2023 form of `promotion[coupon]`
    "code": Str(max_length=500),
    "active": Bool(),
    "customer": Str(),
    "expires_at": Int(),
    "max_redemptions": Int(minimum=1),
    "metadata": Metadata(),
    "restrictions": Hash(
        {
            "first_time_transaction": Bool(),
            "minimum_amount": Int(minimum=1),
            "minimum_amount_currency": Str(),
            "currency_options": Unsimulated(),
        }
    ),
    "customer_account": Unsimulated(),
    "expand": EXPAND,
}

PROMOTION_CODE_UPDATE: dict[str, Spec] = {
    "active": Bool(),
    "metadata": Metadata(patch=True),
    "restrictions": Hash({"currency_options": Unsimulated()}),
    "expand": EXPAND,
}

PROMOTION_CODE_LIST: dict[str, Spec] = {
    **LIST_PAGE,
    "active": Bool(),
    "code": Str(),
    "coupon": Str(),
    "customer": Str(),
    "customer_account": Unsimulated(),
}

TAX_TYPES = (
    "amusement_tax",
    "communications_tax",
    "gst",
    "hst",
    "igst",
    "jct",
    "lease_tax",
    "pst",
    "qst",
    "retail_delivery_fee",
    "rst",
    "sales_tax",
    "service_tax",
    "vat",
)

TAX_RATE_CREATE: dict[str, Spec] = {
    "display_name": Str(required=True, max_length=50),
    "inclusive": Bool(required=True),
    "percentage": Number(required=True, minimum=Decimal(0), maximum=Decimal(100)),
    "active": Bool(),
    "country": Str(max_length=2),
    "description": Str(),
    "jurisdiction": Str(max_length=50),
    "metadata": Metadata(),
    "state": Str(),
    "tax_type": Enum(TAX_TYPES),
    "expand": EXPAND,
}

TAX_RATE_UPDATE: dict[str, Spec] = {
    "active": Bool(),
    "country": Clearable(Str(max_length=2)),
    "description": Clearable(Str()),
    "display_name": Str(max_length=50),
    "jurisdiction": Clearable(Str(max_length=50)),
    "metadata": Metadata(patch=True),
    "state": Clearable(Str()),
    "tax_type": Enum(TAX_TYPES),
    "expand": EXPAND,
}

TAX_RATE_LIST: dict[str, Spec] = {**LIST_PAGE, "active": Bool(), "inclusive": Bool()}

# -------------------------------------------------------------------- payments: capture, lists

PI_CAPTURE: dict[str, Spec] = {
    "amount_to_capture": Int(minimum=1),
    "metadata": Metadata(patch=True),
    "statement_descriptor": Str(max_length=22),
    "statement_descriptor_suffix": Str(max_length=22),
    "application_fee_amount": Unsimulated(),
    "transfer_data": Unsimulated(),
    "final_capture": Unsimulated(),
    **refused("amount_details", "hooks", "payment_details"),
    "expand": EXPAND,
}

PI_CANCEL: dict[str, Spec] = {
    "cancellation_reason": Enum(("abandoned", "duplicate", "fraudulent", "requested_by_customer")),
    "expand": EXPAND,
}

PI_LIST: dict[str, Spec] = {**LIST_PAGE, "customer": Str(), "customer_account": Unsimulated()}
CHARGE_LIST: dict[str, Spec] = {
    **LIST_PAGE,
    "customer": Str(),
    "payment_intent": Str(),
    "transfer_group": Str(),
}
REFUND_LIST: dict[str, Spec] = {**LIST_PAGE, "charge": Str(), "payment_intent": Str()}
DISPUTE_LIST: dict[str, Spec] = {**LIST_PAGE, "charge": Str(), "payment_intent": Str()}


# Every routed `/v1` operation, by `operation_key`, with the spec its route passes to `Api.call`:
# the table tests/sandbox/test_sandbox_param_table.py walks (a route missing here fails it).
OPERATIONS: dict[str, dict[str, Spec]] = {
    "POST /v1/checkout/sessions": SESSION_CREATE,
    "GET /v1/checkout/sessions": SESSION_LIST,
    "GET /v1/checkout/sessions/{id}": RETRIEVE,
    "POST /v1/checkout/sessions/{id}": SESSION_UPDATE,
    "GET /v1/checkout/sessions/{id}/line_items": PAGE,
    "POST /v1/checkout/sessions/{id}/expire": RETRIEVE,
    "GET /v1/payment_intents/{id}": PI_RETRIEVE,
    "GET /v1/charges/{id}": RETRIEVE,
    "POST /v1/refunds": REFUND_CREATE,
    "GET /v1/refunds/{id}": RETRIEVE,
    "GET /v1/disputes/{id}": RETRIEVE,
    "GET /v1/events": EVENT_LIST,
    "GET /v1/events/{id}": RETRIEVE,
    "POST /v1/coupons": COUPON_CREATE,
    "GET /v1/coupons": LIST_PAGE,
    "GET /v1/coupons/{id}": RETRIEVE,
    "POST /v1/coupons/{id}": COUPON_UPDATE,
    "POST /v1/promotion_codes": PROMOTION_CODE_CREATE,
    "GET /v1/promotion_codes": PROMOTION_CODE_LIST,
    "GET /v1/promotion_codes/{id}": RETRIEVE,
    "POST /v1/promotion_codes/{id}": PROMOTION_CODE_UPDATE,
    "POST /v1/customers": CUSTOMER_CREATE,
    "GET /v1/customers": CUSTOMER_LIST,
    "GET /v1/customers/search": SEARCH,
    "GET /v1/customers/{id}": RETRIEVE,
    "POST /v1/customers/{id}": CUSTOMER_UPDATE,
    "DELETE /v1/customers/{id}": DELETE,
    "POST /v1/products": PRODUCT_CREATE,
    "GET /v1/products": PRODUCT_LIST,
    "GET /v1/products/search": SEARCH,
    "GET /v1/products/{id}": RETRIEVE,
    "POST /v1/products/{id}": PRODUCT_UPDATE,
    "POST /v1/prices": PRICE_CREATE,
    "GET /v1/prices": PRICE_LIST,
    "GET /v1/prices/search": SEARCH,
    "GET /v1/prices/{id}": RETRIEVE,
    "POST /v1/prices/{id}": PRICE_UPDATE,
    "POST /v1/tax_rates": TAX_RATE_CREATE,
    "GET /v1/tax_rates": TAX_RATE_LIST,
    "GET /v1/tax_rates/{id}": RETRIEVE,
    "POST /v1/tax_rates/{id}": TAX_RATE_UPDATE,
    "POST /v1/payment_intents/{id}/capture": PI_CAPTURE,
    "POST /v1/payment_intents/{id}/cancel": PI_CANCEL,
    "GET /v1/payment_intents": PI_LIST,
    "GET /v1/payment_intents/search": SEARCH,
    "GET /v1/charges": CHARGE_LIST,
    "GET /v1/charges/search": SEARCH,
    "GET /v1/refunds": REFUND_LIST,
    "POST /v1/refunds/{id}/cancel": RETRIEVE,
    "GET /v1/disputes": DISPUTE_LIST,
    "GET /v1/balance_transactions/{id}": RETRIEVE,
}

_PATH_PARAM = re.compile(r"\{[^}]+\}")


def operation_key(method: str, path_template: str) -> str:
    """`POST /v1/checkout/sessions/{id}` for a route template, whatever its parameter's name or mount."""
    path = path_template[path_template.find("/v1/") :]
    return f"{method.upper()} {_PATH_PARAM.sub('{id}', path)}"
