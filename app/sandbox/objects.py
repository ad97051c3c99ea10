"""Builders for the Stripe objects the sandbox serves.

Each builder emits every top-level key the 2026 fixtures carry (nulls where the shop's flows
leave them unset) and nothing the installed SDK's resource class doesn't declare.
"""

from __future__ import annotations

import hashlib
from typing import Any

Obj = dict[str, Any]

_EMPTY_ADDRESS: Obj = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def address(country: str | None = None) -> Obj:
    return {**_EMPTY_ADDRESS, "country": country}


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def list_object(data: list[Obj], has_more: bool, url: str) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def price(
    price_id: str,
    product_id: str,
    currency: str,
    unit_amount: int,
    created: int,
    *,
    active: bool,
    nickname: str | None = None,
    lookup_key: str | None = None,
    metadata: dict[str, str] | None = None,
    tax_behavior: str = "unspecified",
) -> Obj:
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata or {},
        "nickname": nickname,
        "product": product_id,
        "recurring": None,
        "tax_behavior": tax_behavior,
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def product(product_id: str, name: str, created: int, params: Obj) -> Obj:
    return {
        "id": product_id,
        "object": "product",
        "active": params.get("active", True),
        "created": created,
        "default_price": None,
        "description": params.get("description"),
        "images": params.get("images", []),
        "livemode": False,
        "marketing_features": [{"name": f["name"]} for f in params.get("marketing_features", [])],
        "metadata": params.get("metadata", {}),
        "name": name,
        "package_dimensions": None,
        "shippable": params.get("shippable"),
        "statement_descriptor": params.get("statement_descriptor"),
        "tax_code": params.get("tax_code"),
        "type": "service",
        "unit_label": params.get("unit_label"),
        "updated": created,
        "url": params.get("url"),
    }


def customer(customer_id: str, created: int, params: Obj, invoice_prefix: str) -> Obj:
    addr = params.get("address")
    return {
        "id": customer_id,
        "object": "customer",
        "address": {**_EMPTY_ADDRESS, **addr} if addr else None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description"),
        "discount": None,
        "email": params.get("email"),
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": params.get("metadata", {}),
        "name": params.get("name"),
        "next_invoice_sequence": 1,
        "phone": params.get("phone"),
        "preferred_locales": params.get("preferred_locales", []),
        "shipping": None,
        "tax_exempt": params.get("tax_exempt", "none"),
        "test_clock": None,
    }


def coupon(coupon_id: str, created: int, params: Obj, percent_off: int | float | None) -> Obj:
    amount_off = params.get("amount_off")
    return {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount_off,
        "created": created,
        "currency": params["currency"].lower() if amount_off is not None else None,
        "duration": params.get("duration", "once"),
        "duration_in_months": None,
        "livemode": False,
        "max_redemptions": params.get("max_redemptions"),
        "metadata": params.get("metadata", {}),
        "name": params.get("name"),
        "percent_off": percent_off,
        "redeem_by": params.get("redeem_by"),
        "times_redeemed": 0,
        "valid": True,
    }


def promotion_code(promo_id: str, created: int, code: str, coupon_id: str, params: Obj) -> Obj:
    restrictions = params.get("restrictions", {})
    return {
        "id": promo_id,
        "object": "promotion_code",
        "active": params.get("active", True),
        "code": code,
        "created": created,
        "customer": params.get("customer"),
        "customer_account": None,
        "expires_at": params.get("expires_at"),
        "livemode": False,
        "max_redemptions": params.get("max_redemptions"),
        "metadata": params.get("metadata", {}),
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": {
            "currency_options": {},
            "first_time_transaction": restrictions.get("first_time_transaction", False),
            "minimum_amount": restrictions.get("minimum_amount"),
            "minimum_amount_currency": (restrictions.get("minimum_amount_currency") or "").lower() or None,
        },
        "times_redeemed": 0,
    }


def tax_rate(rate_id: str, created: int, params: Obj, percentage: int | float) -> Obj:
    country = params.get("country")
    return {
        "id": rate_id,
        "object": "tax_rate",
        "active": params.get("active", True),
        "country": country,
        "created": created,
        "description": params.get("description"),
        "display_name": params["display_name"],
        "effective_percentage": percentage,
        "flat_amount": None,
        "inclusive": params["inclusive"],
        "jurisdiction": params.get("jurisdiction"),
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": params.get("metadata", {}),
        "percentage": percentage,
        "rate_type": "percentage",
        "state": params.get("state"),
        "tax_type": params.get("tax_type"),
    }


def line_item(item_id: str, price_obj: Obj, quantity: int, description: str) -> Obj:
    subtotal = int(price_obj["unit_amount"]) * quantity
    return {
        "id": item_id,
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": subtotal,
        "amount_tax": 0,
        "amount_total": subtotal,
        "currency": price_obj["currency"],
        "description": description,
        "metadata": {},
        "price": price_obj,
        "quantity": quantity,
    }


def checkout_session(
    *,
    session_id: str,
    created: int,
    expires_at: int,
    currency: str,
    amount: int,
    url: str,
    params: Obj,
    payment_method_types: list[str],
) -> Obj:
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": params.get("locale"),
        "managed_payments": None,
        "metadata": params.get("metadata", {}),
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": payment_method_types,
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": url,
        "wallet_options": None,
    }


def customer_details(email: str | None, name: str | None, country: str | None) -> Obj:
    return {
        "address": address(country),
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def payment_intent(
    *,
    pi_id: str,
    created: int,
    amount: int,
    currency: str,
    method_type: str,
    description: str | None,
    metadata: dict[str, str],
    receipt_email: str | None,
) -> Obj:
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{pi_id}_secret_{fingerprint(pi_id)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": [method_type],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def card_details(
    *,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    country: str,
    funding: str,
    number: str,
    cvc_check: str | None,
    three_d_secure: Obj | None,
) -> Obj:
    return {
        "type": "card",
        "card": {
            "amount_authorized": None,
            "authorization_code": None,
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": cvc_check,
            },
            "country": country,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": fingerprint(number),
            "funding": funding,
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": last4,
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": brand,
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": 0, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": three_d_secure,
            "wallet": None,
        },
    }


def bank_details(method: str, account: str, mandate: str) -> Obj:
    last4 = account[-4:]
    if method == "sepa_debit":
        return {
            "type": "sepa_debit",
            "sepa_debit": {
                "bank_code": account[4:12] if len(account) > 12 else None,
                "branch_code": None,
                "country": account[:2],
                "fingerprint": fingerprint(account),
                "last4": last4,
                "mandate": mandate,
            },
        }
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "individual",
            "account_type": "checking",
            "bank_name": "STRIPE TEST BANK",
            "fingerprint": fingerprint(account),
            "last4": last4,
            "mandate": mandate,
            "payment_reference": None,
            "routing_number": "110000000",
        },
    }


def charge(
    *,
    charge_id: str,
    created: int,
    amount: int,
    currency: str,
    pi_id: str,
    pm_id: str,
    details: Obj,
    billing_email: str | None,
    billing_name: str | None,
    description: str | None,
    metadata: dict[str, str],
    receipt_url: str,
) -> Obj:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {
            "address": address(),
            "email": billing_email,
            "name": billing_name,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "STOREFRONT SANDBOX",
        "captured": False,
        "created": created,
        "currency": currency,
        "customer": None,
        "description": description,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": metadata,
        "on_behalf_of": None,
        "outcome": None,
        "paid": False,
        "payment_intent": pi_id,
        "payment_method": pm_id,
        "payment_method_details": details,
        "receipt_email": billing_email,
        "receipt_number": None,
        "receipt_url": receipt_url,
        "refunded": False,
        "refunds": list_object([], False, f"/v1/charges/{charge_id}/refunds"),
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "pending",
        "transfer_data": None,
        "transfer_group": None,
    }


def outcome_authorized() -> Obj:
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": "normal",
        "risk_score": 20,
        "seller_message": "Payment complete.",
        "type": "authorized",
    }


def outcome_declined(reason: str | None, issuer: bool = True) -> Obj:
    return {
        "advice_code": "try_again_later" if reason == "processing_error" else "do_not_try_again",
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": reason,
        "risk_level": "normal",
        "risk_score": 20,
        "seller_message": "The bank did not return any further details with this decline."
        if issuer
        else "The bank returned the decline code.",
        "type": "issuer_declined",
    }


def balance_transaction(
    *,
    txn_id: str,
    created: int,
    amount: int,
    currency: str,
    source: str,
    kind: str,
    category: str,
    description: str | None,
) -> Obj:
    return {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created + 2 * 86400,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": 0,
        "fee_details": [],
        "net": amount,
        "reporting_category": category,
        "source": source,
        "status": "pending",
        "type": kind,
    }


def refund(
    *,
    refund_id: str,
    created: int,
    amount: int,
    currency: str,
    charge_id: str,
    pi_id: str,
    reason: str | None,
    metadata: dict[str, str],
    method_type: str,
    txn_id: str,
    pm_id: str,
) -> Obj:
    if method_type == "card":
        destination: Obj = {
            "type": "card",
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": None,
                "type": "refund",
            },
        }
    else:
        destination = {"type": method_type, method_type: {}}
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn_id,
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "destination_details": destination,
        "metadata": metadata,
        "payment_intent": pi_id,
        "payment_method": pm_id,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded" if method_type == "card" else "pending",
        "transfer_reversal": None,
    }


def dispute(
    *,
    dispute_id: str,
    created: int,
    amount: int,
    currency: str,
    charge_id: str,
    pi_id: str,
    brand: str,
    balance_transactions: list[Obj],
) -> Obj:
    evidence_keys = [
        "access_activity_log",
        "billing_address",
        "cancellation_policy",
        "cancellation_policy_disclosure",
        "cancellation_rebuttal",
        "customer_communication",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "customer_signature",
        "duplicate_charge_documentation",
        "duplicate_charge_explanation",
        "duplicate_charge_id",
        "product_description",
        "receipt",
        "refund_policy",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "service_documentation",
        "shipping_address",
        "shipping_carrier",
        "shipping_date",
        "shipping_documentation",
        "shipping_tracking_number",
        "uncategorized_file",
        "uncategorized_text",
    ]
    evidence: Obj = dict.fromkeys(evidence_keys)
    evidence["enhanced_evidence"] = {}
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": balance_transactions,
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": pi_id,
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": brand,
                "case_type": "chargeback",
                "network_reason_code": "10.4",
                "network": brand,
            },
        },
        "reason": "fraudulent",
        "status": "needs_response",
    }


def event(
    *,
    event_id: str,
    created: int,
    api_version: str,
    event_type: str,
    data: Obj,
    pending_webhooks: int,
    request_id: str | None,
    idempotency_key: str | None,
) -> Obj:
    return {
        "id": event_id,
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
