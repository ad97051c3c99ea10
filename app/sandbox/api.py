"""The `/v1` API: Stripe's routes, auth, idempotency, expansion and list semantics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from .errors import StripeError, invalid
from .forms import Spec, expand_list, parse_form, parse_params
from .ids import new_id
from .params import EVENT_LIST, PAGE, REFUND_CREATE, RETRIEVE, SESSION_CREATE, SESSION_LIST
from .runtime import SandboxRuntime, encode
from .state import API_VERSION, Collection, Obj, RequestContext, SandboxState

# Which fields each object lets `expand[]` replace with the full object.
EXPANDABLE: dict[str, frozenset[str]] = {
    "checkout.session": frozenset(
        {
            "payment_intent",
            "line_items",
            "customer",
            "invoice",
            "payment_link",
            "setup_intent",
            "subscription",
        }
    ),
    "payment_intent": frozenset(
        {"latest_charge", "customer", "payment_method", "application", "on_behalf_of", "review"}
    ),
    "charge": frozenset(
        {
            "payment_intent",
            "balance_transaction",
            "customer",
            "application",
            "application_fee",
            "failure_balance_transaction",
            "on_behalf_of",
            "review",
            "source_transfer",
            "transfer",
        }
    ),
    "refund": frozenset(
        {
            "charge",
            "payment_intent",
            "balance_transaction",
            "failure_balance_transaction",
            "source_transfer_reversal",
            "transfer_reversal",
        }
    ),
    "dispute": frozenset({"charge", "payment_intent"}),
    "item": frozenset({"price"}),
    "price": frozenset({"product"}),
    "balance_transaction": frozenset({"source"}),
    "product": frozenset({"default_price"}),
    "coupon": frozenset(),
    "promotion_code": frozenset({"customer"}),
    "promotion_code.promotion": frozenset({"coupon"}),
    "customer": frozenset({"default_source", "test_clock"}),
    "tax_rate": frozenset(),
    "event": frozenset(),
}

Operation = Callable[[Obj, RequestContext], tuple[int, Any]]


def expand(state: SandboxState, obj: Obj, paths: list[str], depth: int = 0, where: str | None = None) -> Obj:
    """Replace id strings with objects along dotted `expand[]` paths (max depth 4, as Stripe).

    `where` names a sub-hash without an `object` of its own (`promotion_code.promotion`), whose
    expandable fields EXPANDABLE lists under that dotted name.
    """
    if not paths:
        return obj
    if depth >= 4:
        raise invalid("You cannot expand more than 4 levels of a property.", param="expand")
    if obj.get("object") in ("list", "search_result"):
        rests = [p[5:] for p in paths if p.startswith("data.")]
        if len(rests) != len(paths):
            bad = next(p for p in paths if not p.startswith("data."))
            raise invalid(f"This property cannot be expanded ({bad}).", param="expand")
        return {**obj, "data": [expand(state, item, rests, depth + 1) for item in obj["data"]]}
    grouped: dict[str, list[str]] = {}
    for path in paths:
        head, _, rest = path.partition(".")
        grouped.setdefault(head, [])
        if rest:
            grouped[head].append(rest)
    out = dict(obj)
    kind = where or str(obj.get("object"))
    allowed = EXPANDABLE.get(kind, frozenset())
    for head, rests in grouped.items():
        if f"{kind}.{head}" in EXPANDABLE and isinstance(out.get(head), dict) and rests:
            out[head] = expand(state, out[head], rests, depth, where=f"{kind}.{head}")
            continue
        if head not in allowed:
            raise invalid(f"This property cannot be expanded ({head}).", param="expand")
        value: Any
        if head == "line_items" and obj.get("object") == "checkout.session":
            value = state.line_items_list(obj["id"])
        else:
            value = out.get(head)
            if isinstance(value, str):
                target = state.fetch(value)
                if target is None:
                    raise invalid(
                        f"This property cannot be expanded ({head}) in the Stripe sandbox.", param="expand"
                    )
                value = target
        if rests and isinstance(value, dict):
            value = expand(state, value, rests, depth + 1)
        out[head] = value
    return out


def page_args(params: Obj) -> dict[str, Any]:
    return {
        "limit": params.get("limit", 10),
        "starting_after": params.get("starting_after"),
        "ending_before": params.get("ending_before"),
    }


def created_match(bounds: dict[str, int] | None, created: int) -> bool:
    if not bounds:
        return True
    return (
        ("eq" not in bounds or created == bounds["eq"])
        and ("gt" not in bounds or created > bounds["gt"])
        and ("gte" not in bounds or created >= bounds["gte"])
        and ("lt" not in bounds or created < bounds["lt"])
        and ("lte" not in bounds or created <= bounds["lte"])
    )


class Api:
    """Request plumbing shared by every `/v1` route."""

    def __init__(self, runtime: SandboxRuntime) -> None:
        self.rt = runtime
        self.state = runtime.state

    async def call(
        self, request: Request[Any, Any, Any], spec: dict[str, Spec], op: Operation
    ) -> Response[bytes]:
        if not self.rt.started:
            await self.rt.start()
        request_id = new_id("req_", 14)
        headers: dict[str, str] = {"Request-Id": request_id}
        method = request.method
        idem_key = request.headers.get("idempotency-key") if method == "POST" else None
        if idem_key is not None:
            headers["Idempotency-Key"] = idem_key
        key = fingerprint = ""
        try:
            key = self.rt.authenticate(request.headers)
            headers["Stripe-Version"] = request.headers.get("stripe-version") or API_VERSION
            raw: bytes | str = await request.body() if method == "POST" else request.scope["query_string"]
            if idem_key is not None:
                if len(idem_key) > 255:
                    raise invalid(
                        "Idempotency keys may only be up to 255 characters long.", param="Idempotency-Key"
                    )
                fingerprint = self._fingerprint(request, raw)
                cached = self.state.idempotent_lookup(key, idem_key, fingerprint)
                if cached is not None:
                    headers["Idempotent-Replayed"] = "true"
                    # Stripe names the request whose answer this is (absent for pre-v2 state files).
                    if cached.get("request_id"):
                        headers["Original-Request"] = cached["request_id"]
                    return Response(
                        cached["body"].encode(),
                        status_code=cached["status"],
                        media_type="application/json",
                        headers=headers,
                    )
            params = parse_params(parse_form(raw), spec)
            async with self.state.lock:
                status, result = op(params, RequestContext(request_id, idem_key))
            body = encode(result)
            if idem_key is not None:
                self.state.idempotent_store(key, idem_key, fingerprint, status, body, request_id)
            return Response(body, status_code=status, media_type="application/json", headers=headers)
        except StripeError as err:
            headers.update(err.headers)
            body = encode(err.body())
            if idem_key is not None and err.status == 402 and fingerprint:
                self.state.idempotent_store(key, idem_key, fingerprint, err.status, body, request_id)
            return Response(body, status_code=err.status, media_type="application/json", headers=headers)

    @staticmethod
    def _fingerprint(request: Request[Any, Any, Any], raw: bytes | str) -> str:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        pairs = sorted(parse_qsl(text, keep_blank_values=True))
        return request.method + " " + request.url.path + "?" + repr(pairs)

    # -------------------------------------------------------------------------- operations

    def create_session(self, params: Obj, ctx: RequestContext) -> tuple[int, Obj]:
        session = self.state.create_session(params, ctx, self.rt.config.public_url)
        return 200, expand(self.state, session, expand_list(params))

    def retrieve(self, coll: Collection, kind: str, oid: str) -> Operation:
        def op(params: Obj, _ctx: RequestContext) -> tuple[int, Obj]:
            obj = self.state.get_or_404(coll, kind, oid)
            if kind == "event":
                obj = self.state.event_view(obj)
            return 200, expand(self.state, obj, expand_list(params))

        return op

    def list_sessions(self, params: Obj, _ctx: RequestContext) -> tuple[int, Obj]:
        pi = params.get("payment_intent")
        status = params.get("status")
        email = params.get("customer_details", {}).get("email")
        created = params.get("created")
        customer = params.get("customer")
        filters = [
            pi,
            status,
            email,
            created,
            customer,
            params.get("payment_link"),
            params.get("subscription"),
        ]

        def match(s: Obj) -> bool:
            details = s.get("customer_details") or {}
            return (
                (pi is None or s["payment_intent"] == pi)
                and (status is None or s["status"] == status)
                and (email is None or (details.get("email") or "").lower() == email.lower())
                and (customer is None or s["customer"] == customer)
                and ("payment_link" not in params or s["payment_link"] == params["payment_link"])
                and ("subscription" not in params or s["subscription"] == params["subscription"])
                and created_match(created, s["created"])
            )

        data, more = self.state.sessions.page(
            kind="checkout.session",
            match=match if any(f is not None for f in filters) else None,
            **page_args(params),
        )
        result = {"object": "list", "data": data, "has_more": more, "url": "/v1/checkout/sessions"}
        return 200, expand(self.state, result, expand_list(params))

    def list_line_items(self, sid: str) -> Operation:
        def op(params: Obj, _ctx: RequestContext) -> tuple[int, Obj]:
            self.state.get_or_404(self.state.sessions, "checkout.session", sid)
            result = self.state.line_items_list(sid, **page_args(params))
            return 200, expand(self.state, result, expand_list(params))

        return op

    def expire_session(self, sid: str) -> Operation:
        def op(params: Obj, ctx: RequestContext) -> tuple[int, Obj]:
            session = self.state.expire_session(sid, ctx)
            return 200, expand(self.state, session, expand_list(params))

        return op

    def create_refund(self, params: Obj, ctx: RequestContext) -> tuple[int, Obj]:
        refund = self.state.create_refund(params, ctx)
        return 200, expand(self.state, refund, expand_list(params))

    def list_events(self, params: Obj, _ctx: RequestContext) -> tuple[int, Obj]:
        if "type" in params and "types" in params:
            raise invalid("You may pass either `type` or `types`, but not both.", param="types")
        wanted: list[str] = params.get("types") or ([params["type"]] if "type" in params else [])
        exact = {t for t in wanted if not t.endswith("*")}
        prefixes = tuple(t[:-1] for t in wanted if t.endswith("*"))
        created = params.get("created")
        success = params.get("delivery_success")
        state = self.state

        def match(e: Obj) -> bool:
            t = e["type"]
            return (
                (not wanted or t in exact or (bool(prefixes) and t.startswith(prefixes)))
                and created_match(created, e["created"])
                and (success is None or state.delivery_succeeded(e["id"]) == success)
            )

        filtered = bool(wanted) or created is not None or success is not None
        data, more = state.events.page(kind="event", match=match if filtered else None, **page_args(params))
        result = {
            "object": "list",
            "data": [state.event_view(e) for e in data],
            "has_more": more,
            "url": "/v1/events",
        }
        return 200, expand(state, result, expand_list(params))


def api_routes(runtime: SandboxRuntime) -> list[HTTPRouteHandler]:
    api = Api(runtime)
    state = runtime.state

    @post("/v1/checkout/sessions", status_code=200)
    async def create_session(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await api.call(request, SESSION_CREATE, api.create_session)

    @get("/v1/checkout/sessions")
    async def list_sessions(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await api.call(request, SESSION_LIST, api.list_sessions)

    @get("/v1/checkout/sessions/{sid:str}")
    async def retrieve_session(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, RETRIEVE, api.retrieve(state.sessions, "checkout.session", sid))

    @get("/v1/checkout/sessions/{sid:str}/line_items")
    async def session_line_items(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, PAGE, api.list_line_items(sid))

    @post("/v1/checkout/sessions/{sid:str}/expire", status_code=200)
    async def expire_session(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, RETRIEVE, api.expire_session(sid))

    @get("/v1/payment_intents/{oid:str}")
    async def retrieve_pi(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, RETRIEVE, api.retrieve(state.payment_intents, "payment_intent", oid))

    @get("/v1/charges/{oid:str}")
    async def retrieve_charge(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, RETRIEVE, api.retrieve(state.charges, "charge", oid))

    @post("/v1/refunds", status_code=200)
    async def create_refund(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await api.call(request, REFUND_CREATE, api.create_refund)

    @get("/v1/refunds/{oid:str}")
    async def retrieve_refund(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, RETRIEVE, api.retrieve(state.refunds, "refund", oid))

    @get("/v1/disputes/{oid:str}")
    async def retrieve_dispute(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, RETRIEVE, api.retrieve(state.disputes, "dispute", oid))

    @get("/v1/events")
    async def list_events(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await api.call(request, EVENT_LIST, api.list_events)

    @get("/v1/events/{oid:str}")
    async def retrieve_event(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[bytes]:
        return await api.call(request, RETRIEVE, api.retrieve(state.events, "event", oid))

    return [
        create_session,
        list_sessions,
        retrieve_session,
        session_line_items,
        expire_session,
        retrieve_pi,
        retrieve_charge,
        create_refund,
        retrieve_refund,
        retrieve_dispute,
        list_events,
        retrieve_event,
    ]


def stripe_error_response(err: StripeError) -> Response[bytes]:
    headers = {"Request-Id": new_id("req_", 14), **err.headers}
    return Response(
        encode(err.body()), status_code=err.status, media_type="application/json", headers=headers
    )
