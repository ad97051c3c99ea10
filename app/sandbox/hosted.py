"""The hosted Checkout page (`/c/pay/{id}`), its 3-D Secure challenge and receipts.

Plain HTML forms, no JavaScript. Links and form actions are relative so the pages work both at the
sandbox root and mounted under a prefix such as `/sandbox`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from .cards import AUTHENTICATION_FAILED
from .errors import StripeError
from .money import format_amount
from .runtime import SandboxRuntime
from .state import CardInput, Obj, PayResult

_MESSAGES = {"authentication": AUTHENTICATION_FAILED.message}


def _form(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _split_expiry(value: str) -> tuple[str, str]:
    month, _, year = value.replace(" ", "").partition("/")
    return month, year


def hosted_routes(runtime: SandboxRuntime) -> list[HTTPRouteHandler]:
    state = runtime.state

    def page_context(session: Obj, action: str, **extra: Any) -> dict[str, Any]:
        currency = session["currency"]
        items = [
            {
                "description": item["description"],
                "quantity": item["quantity"],
                "unit": format_amount(item["price"]["unit_amount"], currency),
                "total": format_amount(item["amount_total"], currency),
            }
            for item in state.line_items.get(session["id"], [])
        ]
        methods = session["payment_method_types"]
        bank = next((m for m in methods if m in ("sepa_debit", "us_bank_account")), None)
        return {
            "session": session,
            "items": items,
            "total": format_amount(session["amount_total"], currency),
            "currency": currency.upper(),
            "action": action,
            "card_enabled": "card" in methods,
            "bank": bank,
            "bank_label": "Account number (IBAN)" if bank == "sepa_debit" else "Account number",
            "values": {"email": session.get("customer_email") or ""},
            "errors": {},
            "message": None,
            **extra,
        }

    def status_page(session: Obj | None, status_code: int = 200) -> Template:
        return Template(template_name="status.html", context={"session": session}, status_code=status_code)

    def after_payment(result: PayResult, action: str, form: dict[str, str]) -> Response[Any] | Template:
        session = result.session
        if result.status in ("succeeded", "processing"):
            success = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])
            return Redirect(success, status_code=303)
        if result.status == "requires_action":
            return Redirect(f"{action}/3ds/{result.payment_intent}", status_code=303)
        values = {k: v for k, v in form.items() if k in ("email", "name", "method")}
        ctx = page_context(session, action, values=values, errors=result.field_errors, message=result.message)
        return Template(template_name="pay.html", context=ctx, status_code=402 if result.message else 400)

    @get("/c/pay/{sid:str}")
    async def pay_page(sid: FromPath[str], error: FromQuery[str | None] = None) -> Template:
        session = state.sessions.get(sid)
        if session is None:
            return status_page(None, 404)
        if session["status"] == "open" and session["expires_at"] <= state.now():
            async with state.lock:
                state.tick()
        if session["status"] != "open":
            return status_page(session)
        return Template(
            template_name="pay.html", context=page_context(session, sid, message=_MESSAGES.get(error or ""))
        )

    @post("/c/pay/{sid:str}", status_code=200)
    async def submit(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[Any] | Template:
        if not runtime.started:
            await runtime.start()
        session = state.sessions.get(sid)
        if session is None:
            return status_page(None, 404)
        form = _form(await request.body())
        if session["status"] != "open":
            return status_page(session)
        email = form.get("email", "").strip() or None
        name = form.get("name", "").strip() or None
        try:
            async with state.lock:
                if form.get("method") == "bank":
                    result = state.pay_with_bank(sid, form.get("account", ""), email=email, name=name)
                else:
                    month, year = _split_expiry(form.get("expiry", ""))
                    card, errors = state.validate_card(
                        form.get("card_number", ""), month, year, form.get("cvc", "").strip()
                    )
                    if card is None:
                        result = PayResult("invalid", session, field_errors=errors)
                    else:
                        result = state.pay_with_card(
                            sid,
                            CardInput(card.number, card.exp_month, card.exp_year, card.cvc, name),
                            email=email,
                            name=name,
                        )
        except StripeError:
            return status_page(state.sessions.get(sid))
        return after_payment(result, sid, form)

    @get("/c/pay/{sid:str}/3ds/{pi_id:str}")
    async def challenge(sid: FromPath[str], pi_id: FromPath[str]) -> Template:
        session = state.sessions.get(sid)
        if session is None or pi_id not in state.challenges:
            return status_page(session, 404 if session is None else 200)
        pi = state.payment_intents.by_id[pi_id]
        context = {
            "session": session,
            "amount": format_amount(pi["amount"], pi["currency"]),
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
            return status_page(session, 404 if session is None else 200)
        try:
            async with state.lock:
                result = state.finish_challenge(sid, pi_id, form.get("outcome") == "complete")
        except StripeError:
            return status_page(state.sessions.get(sid))
        if result.status == "declined":
            return Redirect(f"../../{sid}?error=authentication", status_code=303)
        return after_payment(result, f"../../{sid}", form)

    @get("/receipts/{pi_id:str}")
    async def receipt(pi_id: FromPath[str]) -> Template:
        pi = state.payment_intents.get(pi_id)
        if pi is None:
            return status_page(None, 404)
        charge = state.charges.get(pi["latest_charge"]) if pi["latest_charge"] else None
        context = {"pi": pi, "charge": charge, "amount": format_amount(pi["amount"], pi["currency"])}
        return Template(template_name="receipt.html", context=context)

    return [pay_page, submit, challenge, challenge_submit, receipt]
