"""Parameter specs for the endpoints the sandbox implements (Stripe's names, limits and enums)."""

from __future__ import annotations

import re

from .forms import (
    EXPAND,
    Array,
    Bool,
    Enum,
    Hash,
    Int,
    Metadata,
    RangeOrInt,
    Spec,
    Str,
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
        **refused("product", "tax_behavior"),
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
        **refused("tax_rates", "dynamic_tax_rates", "metadata"),
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
    "expand": EXPAND,
    **refused(
        # Waiting for the sandbox's Customers, Coupons, Promotion Codes and Tax Rates.
        "allow_promotion_codes",
        "automatic_tax",
        "customer",
        "customer_creation",
        "customer_update",
        "discounts",
        # Not simulated at all.
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
    "metadata": Metadata(keep_unset=True),
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


# Every routed `/v1` operation, by `operation_key`: the table the conformance test walks.
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
}

_PATH_PARAM = re.compile(r"\{[^}]+\}")


def operation_key(method: str, path_template: str) -> str:
    """`POST /v1/checkout/sessions/{id}` for a route template, whatever its parameter's name or mount."""
    path = path_template[path_template.find("/v1/") :]
    return f"{method.upper()} {_PATH_PARAM.sub('{id}', path)}"
