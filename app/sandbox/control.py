"""Sandbox-only test controls under `/_sandbox/` (not part of Stripe's API; same Bearer auth).

They drive what a test can't do through Stripe's API: move the clock, settle disputes, pay a session
without a browser, register Prices, configure chaos, and wait until webhook deliveries settle.
Bodies may be JSON or form-encoded; answers are JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from .api import stripe_error_response
from .config import ChaosConfig
from .errors import StripeError, invalid
from .forms import parse_form
from .runtime import SandboxRuntime, encode
from .state import Obj

Handler = Callable[[Obj], Awaitable[Any]]


def _num(body: Obj, key: str, kind: type[int] | type[float], default: Any = None) -> Any:
    value = body.get(key, default)
    if value is None:
        raise invalid(f"Missing required param: {key}.", param=key, code="parameter_missing")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid {kind.__name__}: {value}", param=key) from None


async def _body(request: Request[Any, Any, Any]) -> Obj:
    raw = await request.body()
    if not raw:
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw)
        except ValueError:
            raise invalid("Invalid JSON body.") from None
        if not isinstance(data, dict):
            raise invalid("The JSON body must be an object.")
        return data
    return parse_form(raw)


def control_routes(runtime: SandboxRuntime) -> list[HTTPRouteHandler]:
    state = runtime.state
    worker = runtime.delivery

    async def run(request: Request[Any, Any, Any], fn: Handler) -> Response[bytes]:
        if not runtime.started:
            await runtime.start()
        try:
            runtime.authenticate(request.headers)
            body = await _body(request)
            if request.method == "GET":
                body = {**dict(request.query_params), **body}
            result = await fn(body)
        except StripeError as err:
            return stripe_error_response(err)
        return Response(encode(result), media_type="application/json", headers={"X-Stripe-Sandbox": "true"})

    @get("/_sandbox/status")
    async def status(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(_b: Obj) -> Obj:
            return {
                "sandbox": True,
                "clock": state.now(),
                "clock_offset": state.clock_offset,
                "counts": {
                    "checkout_sessions": len(state.sessions),
                    "payment_intents": len(state.payment_intents),
                    "charges": len(state.charges),
                    "refunds": len(state.refunds),
                    "disputes": len(state.disputes),
                    "events": len(state.events),
                },
                "webhook_endpoints": [url for url, _ in state.endpoints],
                "deliveries_outstanding": worker.outstanding,
                "paused": worker.paused,
                "pending_debits": len(state.pending_debits),
            }

        return await run(request, fn)

    @post("/_sandbox/clock/advance", status_code=200)
    async def advance(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            seconds = _num(b, "seconds", float)
            async with state.lock:
                now = state.advance_clock(seconds)
            return {"clock": now, "clock_offset": state.clock_offset}

        return await run(request, fn)

    @post("/_sandbox/prices", status_code=200)
    async def register_price(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            if "currency" not in b or "product_name" not in b:
                raise invalid("Missing required param: currency and product_name.", code="parameter_missing")
            async with state.lock:
                return state.register_price(
                    price_id=b.get("id"),
                    currency=str(b["currency"]),
                    unit_amount=_num(b, "unit_amount", int),
                    product_name=str(b["product_name"]),
                    product_id=b.get("product"),
                )

        return await run(request, fn)

    @post("/_sandbox/checkout/sessions/{sid:str}/pay", status_code=200)
    async def pay(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            async with state.lock:
                result = state.pay_session(
                    sid,
                    card_number=b.get("card_number"),
                    exp_month=_num(b, "exp_month", int, 12),
                    exp_year=int(b["exp_year"]) if b.get("exp_year") else None,
                    cvc=str(b.get("cvc", "123")),
                    bank_account=b.get("bank_account"),
                    email=b.get("email"),
                    name=b.get("name", "Jenny Rosen"),
                    three_d_secure=str(b.get("three_d_secure", "complete")),
                )
            return result.as_dict()

        return await run(request, fn)

    @post("/_sandbox/disputes/{did:str}/close", status_code=200)
    async def close_dispute(request: Request[Any, Any, Any], did: FromPath[str]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            outcome = b.get("outcome")
            if outcome not in ("won", "lost"):
                raise invalid("outcome must be `won` or `lost`.", param="outcome")
            async with state.lock:
                return state.close_dispute(did, outcome == "won")

        return await run(request, fn)

    @post("/_sandbox/flush", status_code=200)
    async def flush(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            idle = await runtime.flush(_num(b, "timeout", float, 30.0))
            return {"idle": idle, "outstanding": worker.outstanding}

        return await run(request, fn)

    @post("/_sandbox/deliveries/pause", status_code=200)
    async def pause(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(_b: Obj) -> Obj:
            worker.pause()
            return {"paused": True}

        return await run(request, fn)

    @post("/_sandbox/deliveries/resume", status_code=200)
    async def resume(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(_b: Obj) -> Obj:
            worker.resume()
            return {"paused": False}

        return await run(request, fn)

    @get("/_sandbox/deliveries")
    async def deliveries(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            event = b.get("event")
            rows = [a for a in state.delivery_attempts if event is None or a["event"] == event]
            return {"object": "list", "data": rows}

        return await run(request, fn)

    @post("/_sandbox/chaos", status_code=200)
    async def set_chaos(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            if str(b.get("enabled", "true")).lower() == "false":
                worker.set_chaos(None)
                return {"enabled": False}
            chaos = ChaosConfig(
                seed=_num(b, "seed", int, 0),
                duplicate=_num(b, "duplicate", float, 0.0),
                reorder=_num(b, "reorder", float, 0.0),
                delay=_num(b, "delay", float, 0.0),
                drop=_num(b, "drop", float, 0.0),
                max_delay=_num(b, "max_delay", float, 0.5),
            )
            for name in ("duplicate", "reorder", "delay", "drop"):
                if not 0.0 <= getattr(chaos, name) <= 1.0:
                    raise invalid(f"{name} must be a probability between 0 and 1.", param=name)
            worker.set_chaos(chaos)
            return {"enabled": True, **chaos.__dict__}

        return await run(request, fn)

    @get("/_sandbox/chaos")
    async def chaos_log(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(_b: Obj) -> Obj:
            return {"enabled": worker.chaos is not None, "log": worker.chaos_log}

        return await run(request, fn)

    @post("/_sandbox/webhook_endpoints", status_code=200)
    async def add_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
        async def fn(b: Obj) -> Obj:
            url, secret = b.get("url"), b.get("secret")
            if not isinstance(url, str) or not isinstance(secret, str) or not secret.startswith("whsec_"):
                raise invalid("Give `url` and a `secret` starting with whsec_.", param="url")
            state.endpoints.append((url, secret))
            return {"webhook_endpoints": [u for u, _ in state.endpoints]}

        return await run(request, fn)

    return [
        status,
        advance,
        register_price,
        pay,
        close_dispute,
        flush,
        pause,
        resume,
        deliveries,
        set_chaos,
        chaos_log,
        add_endpoint,
    ]
