"""The hosted Checkout page (`/c/pay/{id}`), its 3-D Secure challenge and receipts.

Plain HTML forms, no JavaScript. Links and form actions are relative so the pages work both at the
sandbox root and mounted under a prefix such as `/sandbox`. A page speaks the language the session's
`locale` picks (`i18n.page_language`). What the session asks to collect is collected: a billing
address (`billing_address_collection`), quantities the buyer may change (`adjustable_quantity`,
applied with the Update button), and the button says what `submit_type` says.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from . import objects
from .cards import AUTHENTICATION_FAILED
from .errors import StripeError
from .forms import looks_like_email
from .i18n import BABEL, HTML_LANG, _, country_names, page_language, translator
from .money import format_amount
from .runtime import SandboxRuntime
from .state import CardInput, Obj, PayResult

_MESSAGES = {"authentication": AUTHENTICATION_FAILED.message}

# The button's label for each `submit_type` (Stripe's wording; `auto` reads "Pay").
SUBMIT_LABELS = {
    "auto": _("Pay"),
    "pay": _("Pay"),
    "book": _("Book"),
    "donate": _("Donate"),
    "subscribe": _("Subscribe"),
}

# Countries offered for a billing address.
COUNTRIES = (
    "AT",
    "AU",
    "BE",
    "CA",
    "CH",
    "CN",
    "DE",
    "DK",
    "ES",
    "FI",
    "FR",
    "GB",
    "HK",
    "IE",
    "IT",
    "JP",
    "NL",
    "NO",
    "NZ",
    "PL",
    "PT",
    "SE",
    "SG",
    "TW",
    "US",
)
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "state", "country")
# Fields a `required` billing address must have; `auto` asks only for the country.
REQUIRED_ADDRESS = ("line1", "city", "postal_code", "country")
KEPT_VALUES = ("email", "name", "method", "promotion_code", *(f"address_{f}" for f in ADDRESS_FIELDS))

# Messages about a typed promotion code (the discounts module words them), shown translated.
CODE_MESSAGES = (_("This code is invalid."), _("Enter a promotion code."))
CODE_UNUSABLE = _("This code can't be used for this purchase.")


TOTAL_CHANGED: Final = _("The total changed with your address. Check it, then pay.")


def _form(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _split_expiry(value: str) -> tuple[str, str]:
    month, _sep, year = value.replace(" ", "").partition("/")
    return month, year


def _quantities(form: dict[str, str]) -> tuple[dict[str, int], dict[str, str]]:
    """`quantity_<line item id>` fields as integers, or an error per unreadable one."""
    wanted: dict[str, int] = {}
    errors: dict[str, str] = {}
    for key, value in form.items():
        if key.startswith("quantity_"):
            item_id = key.removeprefix("quantity_")
            if value.strip().isdigit():
                wanted[item_id] = int(value)
            else:
                errors[item_id] = "invalid"
    return wanted, errors


def address_mode(session: Obj) -> str | None:
    """What address the page asks for: `billing_address_collection`, or the country automatic tax needs."""
    mode = session.get("billing_address_collection")
    return mode or ("auto" if session["automatic_tax"]["enabled"] else None)


def _address(session: Obj, form: dict[str, str]) -> tuple[Obj | None, dict[str, str]]:
    """The billing address the page collected (None when it asks for none) and missing fields."""
    mode = address_mode(session)
    if mode is None:
        return None, {}
    values = {f: form.get(f"address_{f}", "").strip() or None for f in ADDRESS_FIELDS}
    needed = REQUIRED_ADDRESS if mode == "required" else ("country",)
    errors = {f"address_{f}": _("This field is incomplete.") for f in needed if not values[f]}
    if values["country"] and values["country"] not in COUNTRIES:
        errors["address_country"] = _("This field is incomplete.")
    country = values.pop("country")
    return objects.address(country, **values), errors


def hosted_routes(runtime: SandboxRuntime) -> list[HTTPRouteHandler]:
    state = runtime.state

    def language_of(request: Request[Any, Any, Any], session: Obj | None) -> str:
        locale = session.get("locale") if session else None
        return page_language(locale, request.headers.get("accept-language"))

    def base_context(language: str) -> dict[str, Any]:
        return {
            "_": translator(language),
            "html_lang": HTML_LANG[language],
            "business_name": runtime.config.business_name,
        }

    def applied_code(session: Obj) -> str | None:
        """The code the buyer applied (or a `discounts` coupon's name), shown beside the discount."""
        if not session["discounts"]:
            return None
        applied = session["discounts"][0]
        if applied["promotion_code"]:
            return str(state.promotion_codes.by_id[applied["promotion_code"]]["code"])
        coupon = state.coupons.get(applied["coupon"])
        return str(coupon["name"] or coupon["id"]) if coupon else None

    def page_context(session: Obj, action: str, language: str, **extra: Any) -> dict[str, Any]:
        currency = session["currency"]
        babel = BABEL[language]
        descriptions = state.session_extra[session["id"]].get("product_descriptions") or []

        def money(amount: int) -> str:
            return format_amount(amount, currency, babel)

        items = [
            {
                "id": item["id"],
                "description": item["description"],
                "product_description": descriptions[i] if i < len(descriptions) else None,
                "quantity": item["quantity"],
                "adjustable": item["adjustable_quantity"],
                "unit": money(item["price"]["unit_amount"]),
                "total": money(item["amount_subtotal"]),
            }
            for i, item in enumerate(state.line_items.get(session["id"], []))
        ]
        methods = session["payment_method_types"]
        bank = next((m for m in methods if m in ("sepa_debit", "us_bank_account")), None)
        details = session["total_details"]
        return {
            **base_context(language),
            "session": session,
            "items": items,
            "adjustable": any(item["adjustable"] for item in items),
            "subtotal": money(session["amount_subtotal"]),
            "discount": money(details["amount_discount"]) if details["amount_discount"] else None,
            "tax": money(details["amount_tax"]) if details["amount_tax"] else None,
            "total": money(session["amount_total"]),
            "currency": currency.upper(),
            "action": action,
            "card_enabled": "card" in methods,
            "bank": bank,
            "submit_label": SUBMIT_LABELS[session.get("submit_type") or "auto"],
            "address_mode": address_mode(session),
            "automatic_tax": session["automatic_tax"]["enabled"],
            "countries": country_names(language, COUNTRIES),
            "promotion_codes": bool(session.get("allow_promotion_codes")),
            "applied_code": applied_code(session),
            "errors": {},
            "message": None,
            **extra,
        }

    def field_problems(session: Obj, form: dict[str, str], email: str | None) -> dict[str, str]:
        """The email and card fields' errors, found without attempting a payment."""
        problems: dict[str, str] = {}
        known = email or state.known_email(session)
        if not known or not looks_like_email(known):
            problems["email"] = _("Your email address is invalid.")
        if form.get("method") != "bank":
            month, year = _split_expiry(form.get("expiry", ""))
            problems |= state.validate_card(
                form.get("card_number", ""), month, year, form.get("cvc", "").strip()
            )[1]
        return problems

    def status_page(request: Request[Any, Any, Any], session: Obj | None, status_code: int = 200) -> Template:
        context = {**base_context(language_of(request, session)), "session": session}
        return Template(template_name="status.html", context=context, status_code=status_code)

    def pay_form(
        request: Request[Any, Any, Any],
        session: Obj,
        action: str,
        form: dict[str, str],
        *,
        errors: dict[str, str] | None = None,
        message: str | None = None,
        status_code: int = 200,
    ) -> Template:
        values = {"email": state.known_email(session) or ""}
        values |= {k: v for k, v in form.items() if k in KEPT_VALUES and v}
        language = language_of(request, session)
        ctx = page_context(session, action, language, values=values, errors=errors or {}, message=message)
        return Template(template_name="pay.html", context=ctx, status_code=status_code)

    def after_payment(
        request: Request[Any, Any, Any], result: PayResult, action: str, form: dict[str, str]
    ) -> Response[Any] | Template:
        session = result.session
        if result.status in ("succeeded", "processing"):
            success = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])
            return Redirect(success, status_code=303)
        if result.status == "requires_action":
            return Redirect(f"{action}/3ds/{result.payment_intent}", status_code=303)
        return pay_form(
            request,
            session,
            action,
            form,
            errors=result.field_errors,
            message=result.message,
            status_code=402 if result.message else 400,
        )

    @get("/c/pay/{sid:str}")
    async def pay_page(
        request: Request[Any, Any, Any], sid: FromPath[str], error: FromQuery[str | None] = None
    ) -> Template:
        session = state.sessions.get(sid)
        if session is None:
            return status_page(request, None, 404)
        if session["status"] == "open" and session["expires_at"] <= state.now():
            async with state.lock:
                state.tick()
        if session["status"] != "open":
            return status_page(request, session)
        return pay_form(request, session, sid, {}, message=_MESSAGES.get(error or ""))

    @post("/c/pay/{sid:str}", status_code=200)
    async def submit(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[Any] | Template:
        if not runtime.started:
            await runtime.start()
        session = state.sessions.get(sid)
        if session is None:
            return status_page(request, None, 404)
        form = _form(await request.body())
        if session["status"] != "open":
            return status_page(request, session)
        email = form.get("email", "").strip() or None
        name = form.get("name", "").strip() or None
        wanted, errors = _quantities(form)
        try:
            async with state.lock:
                if not errors:
                    errors = state.set_quantities(sid, wanted)
                quantity_errors = {f"quantity_{k}": _("Enter a quantity in range.") for k in errors}
                intent = form.get("intent")
                if intent in ("apply_code", "remove_code") and session.get("allow_promotion_codes"):
                    code = form.get("promotion_code", "").strip()
                    if intent == "remove_code":
                        problem = state.set_promotion_code(sid, None)
                    elif code:
                        problem = state.set_promotion_code(sid, code)
                    else:
                        problem = _("Enter a promotion code.")
                    if problem and problem not in CODE_MESSAGES and language_of(request, session) != "en":
                        problem = CODE_UNUSABLE  # the detailed reason is worded in English only
                    errors_now = {"promotion_code": problem} if problem else {}
                    status = 400 if problem else 200
                    return pay_form(request, session, sid, form, errors=errors_now, status_code=status)
                address, address_errors = _address(session, form)
                if address and "address_country" not in address_errors:
                    state.tax_location(sid, address["country"])
                if quantity_errors or intent == "update":
                    status = 400 if errors else 200
                    return pay_form(request, session, sid, form, errors=quantity_errors, status_code=status)
                if form.get("total_seen", str(session["amount_total"])) != str(session["amount_total"]):
                    # A new country changed the tax: Checkout never charges a total the buyer
                    # has not seen (Stripe's page updates it as the address changes).
                    return pay_form(request, session, sid, form, message=TOTAL_CHANGED, status_code=400)
                if address_errors:
                    # Show every problem at once, as Checkout marks each incomplete field.
                    everything = {**address_errors, **field_problems(session, form, email)}
                    return pay_form(request, session, sid, form, errors=everything, status_code=400)
                if form.get("method") == "bank":
                    result = state.pay_with_bank(
                        sid, form.get("account", ""), email=email, name=name, address=address
                    )
                else:
                    month, year = _split_expiry(form.get("expiry", ""))
                    card, card_errors = state.validate_card(
                        form.get("card_number", ""), month, year, form.get("cvc", "").strip()
                    )
                    if card is None:
                        result = PayResult("invalid", session, field_errors=card_errors)
                    else:
                        result = state.pay_with_card(
                            sid,
                            CardInput(card.number, card.exp_month, card.exp_year, card.cvc, name),
                            email=email,
                            name=name,
                            address=address,
                        )
        except StripeError:
            return status_page(request, state.sessions.get(sid))
        return after_payment(request, result, sid, form)

    @get("/c/pay/{sid:str}/3ds/{pi_id:str}")
    async def challenge(
        request: Request[Any, Any, Any], sid: FromPath[str], pi_id: FromPath[str]
    ) -> Template:
        session = state.sessions.get(sid)
        if session is None or pi_id not in state.challenges:
            return status_page(request, session, 404 if session is None else 200)
        pi = state.payment_intents.by_id[pi_id]
        language = language_of(request, session)
        context = {
            **base_context(language),
            "session": session,
            "amount": format_amount(pi["amount"], pi["currency"], BABEL[language]),
            "last4": state.challenges[pi_id]["number"][-4:],
        }
        return Template(template_name="challenge.html", context=context)

    @post("/c/pay/{sid:str}/3ds/{pi_id:str}", status_code=200)
    async def challenge_submit(
        request: Request[Any, Any, Any], sid: FromPath[str], pi_id: FromPath[str]
    ) -> Response[Any] | Template:
        if not runtime.started:
            await runtime.start()
        form = _form(await request.body())
        session = state.sessions.get(sid)
        if session is None or pi_id not in state.challenges:
            return status_page(request, session, 404 if session is None else 200)
        try:
            async with state.lock:
                result = state.finish_challenge(sid, pi_id, form.get("outcome") == "complete")
        except StripeError:
            return status_page(request, state.sessions.get(sid))
        if result.status == "declined":
            return Redirect(f"../../{sid}?error=authentication", status_code=303)
        return after_payment(request, result, f"../../{sid}", form)

    @get("/receipts/{pi_id:str}")
    async def receipt(request: Request[Any, Any, Any], pi_id: FromPath[str]) -> Template:
        pi = state.payment_intents.get(pi_id)
        if pi is None:
            return status_page(request, None, 404)
        language = language_of(request, None)
        charge = state.charges.get(pi["latest_charge"]) if pi["latest_charge"] else None
        context = {
            **base_context(language),
            "pi": pi,
            "charge": charge,
            "amount": format_amount(pi["amount"], pi["currency"], BABEL[language]),
        }
        return Template(template_name="receipt.html", context=context)

    return [pay_page, submit, challenge, challenge_submit, receipt]
