"""Parameter specs for the endpoints the sandbox implements (Stripe's names, limits and enums)."""

from __future__ import annotations

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

PRICE_DATA = Hash(
    {
        "currency": Str(required=True),
        "unit_amount": Int(minimum=0, maximum=MAX_UNIT_AMOUNT),
        "unit_amount_decimal": Str(),
        "product": Str(),
        "product_data": Hash(
            {
                "name": Str(required=True),
                "description": Str(max_length=40000),
                "images": Array(Str(max_length=2048), max_items=8),
                "metadata": Metadata(),
                "tax_code": Str(),
            }
        ),
        "recurring": Hash(
            {
                "interval": Enum(("day", "month", "week", "year"), required=True),
                "interval_count": Int(minimum=1),
            }
        ),
        "tax_behavior": Enum(("exclusive", "inclusive", "unspecified")),
    }
)

LINE_ITEM = Hash(
    {
        "price": Str(),
        "price_data": PRICE_DATA,
        "quantity": Int(minimum=1, maximum=999_999),
        "adjustable_quantity": Hash({"enabled": Bool(required=True), "maximum": Int(), "minimum": Int()}),
        "tax_rates": Array(Str()),
        "dynamic_tax_rates": Array(Str()),
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
    "allow_promotion_codes": Bool(),
    "payment_method_types": Array(Enum(KNOWN_METHODS)),
    "currency": Str(),
    "submit_type": Enum(("auto", "book", "donate", "pay", "subscribe")),
    "billing_address_collection": Enum(("auto", "required")),
    "customer_creation": Enum(("always", "if_required")),
    "ui_mode": Enum(("custom", "embedded", "hosted")),
    "payment_intent_data": Hash(
        {
            "description": Str(max_length=1000),
            "metadata": Metadata(),
            "receipt_email": Str(),
            "statement_descriptor": Str(max_length=22),
            "statement_descriptor_suffix": Str(max_length=22),
            "capture_method": Enum(("automatic", "automatic_async", "manual")),
        }
    ),
    "expand": EXPAND,
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
}

PAGE: dict[str, Spec] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "expand": EXPAND,
}

RETRIEVE: dict[str, Spec] = {"expand": EXPAND}

REFUND_CREATE: dict[str, Spec] = {
    "payment_intent": Str(),
    "charge": Str(),
    "amount": Int(minimum=1),
    "reason": Enum(("duplicate", "fraudulent", "requested_by_customer")),
    "metadata": Metadata(),
    "instructions_email": Str(),
    "refund_application_fee": Bool(),
    "reverse_transfer": Bool(),
    "currency": Str(),
    "origin": Enum(("customer_balance",)),
    "customer": Str(),
    "expand": EXPAND,
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
