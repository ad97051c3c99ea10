"""The `/v1` routes of the catalogue, customers, discounts, tax rates and payment follow-ups.

Kept apart from `api.py` (Checkout Sessions, events, refunds) so each file reads as one area; both
share `Api.call` (auth, versions, idempotency, errors) and `expand`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler

from . import params as P
from .api import Api, Operation, created_match, expand, page_args
from .forms import Spec, expand_list
from .runtime import SandboxRuntime
from .search import search
from .state import Collection, Obj, RequestContext, SandboxState

Match = Callable[[Obj], bool]


def filters(params: Obj, fields: dict[str, str]) -> list[Match]:
    """Equality filters: list parameter name -> object field (only those the caller passed)."""

    def equals(field: str, value: Any) -> Match:
        return lambda o: o.get(field) == value

    return [equals(field, params[name]) for name, field in fields.items() if name in params]


def page_of(
    state: SandboxState, coll: Collection, kind: str, url: str, params: Obj, extra: list[Match]
) -> Obj:
    """Stripe's list: newest first, `limit` / `starting_after` / `ending_before`, `created` bounds."""
    created = params.get("created")
    tests = list(extra)
    if created is not None:
        tests.append(lambda o: created_match(created, o["created"]))
    data, more = coll.page(
        kind=kind, match=(lambda o: all(t(o) for t in tests)) if tests else None, **page_args(params)
    )
    result = {"object": "list", "data": data, "has_more": more, "url": url}
    return expand(state, result, expand_list(params))


def resource_routes(runtime: SandboxRuntime) -> list[HTTPRouteHandler]:
    api = Api(runtime)
    state = runtime.state
    routes: list[HTTPRouteHandler] = []

    def served(obj: Obj, params: Obj) -> tuple[int, Obj]:
        return 200, expand(state, obj, expand_list(params))

    def route(method: str, path: str, spec: dict[str, Spec], make: Callable[..., Operation]) -> None:
        """Register `path`; `make(**path_params)` builds the operation for one request."""
        decorators = {"POST": post(path, status_code=200), "DELETE": delete(path, status_code=200)}
        decorator = decorators.get(method) or get(path)

        async def handler(request: Request[Any, Any, Any]) -> Response[bytes]:
            return await api.call(request, spec, make(**request.path_params))

        handler.__name__ = method.lower() + path.replace("/", "_").replace("{oid:str}", "id")
        routes.append(decorator(handler))

    def create(fn: Callable[[Obj, RequestContext], Obj]) -> Callable[[], Operation]:
        return lambda: lambda params, ctx: served(fn(params, ctx), params)

    def update(fn: Callable[[str, Obj, RequestContext], Obj]) -> Callable[[str], Operation]:
        return lambda oid: lambda params, ctx: served(fn(oid, params, ctx), params)

    def fetch(fn: Callable[[str], Obj]) -> Callable[[str], Operation]:
        return lambda oid: lambda params, _ctx: served(fn(oid), params)

    def listed(
        path: str,
        spec: dict[str, Spec],
        coll: Collection,
        kind: str,
        fields: dict[str, str] | None = None,
        extra: Callable[[Obj], list[Match]] | None = None,
    ) -> None:
        """A list route: `fields` maps equality filters to object fields, `extra` adds others."""

        def op(params: Obj, _ctx: RequestContext) -> tuple[int, Obj]:
            tests = [*filters(params, fields or {}), *(extra(params) if extra else [])]
            return 200, page_of(state, coll, kind, path, params, tests)

        route("GET", path, spec, lambda: op)

    def searching(coll: Collection, resource: str, url: str) -> Callable[[], Operation]:
        return lambda: (
            lambda params, _ctx: (
                200,
                expand(state, search(coll, resource, params, url), expand_list(params)),
            )
        )

    # ------------------------------------------------------------------ coupons, promotion codes
    route("POST", "/v1/coupons", P.COUPON_CREATE, create(state.create_coupon))
    listed("/v1/coupons", P.LIST_PAGE, state.coupons, "coupon")
    route("GET", "/v1/coupons/{oid:str}", P.RETRIEVE, fetch(state.coupon))
    route("POST", "/v1/coupons/{oid:str}", P.COUPON_UPDATE, update(state.update_coupon))
    route("POST", "/v1/promotion_codes", P.PROMOTION_CODE_CREATE, create(state.create_promotion_code))
    listed(
        "/v1/promotion_codes",
        P.PROMOTION_CODE_LIST,
        state.promotion_codes,
        "promotion_code",
        {"active": "active", "code": "code", "customer": "customer"},
        lambda p: [lambda o: o["promotion"]["coupon"] == p["coupon"]] if "coupon" in p else [],
    )
    route("GET", "/v1/promotion_codes/{oid:str}", P.RETRIEVE, fetch(state.promotion_code))
    route(
        "POST", "/v1/promotion_codes/{oid:str}", P.PROMOTION_CODE_UPDATE, update(state.update_promotion_code)
    )

    # -------------------------------------------------------------------------------- customers
    route("POST", "/v1/customers", P.CUSTOMER_CREATE, create(state.create_customer))
    listed(
        "/v1/customers",
        P.CUSTOMER_LIST,
        state.customers,
        "customer",
        {"email": "email"},
        lambda _p: [lambda o: not o.get("deleted")],
    )
    route(
        "GET",
        "/v1/customers/search",
        P.SEARCH,
        searching(state.customers, "customers", "/v1/customers/search"),
    )
    route("GET", "/v1/customers/{oid:str}", P.RETRIEVE, fetch(state.customer))
    route("POST", "/v1/customers/{oid:str}", P.CUSTOMER_UPDATE, update(state.update_customer))
    route(
        "DELETE",
        "/v1/customers/{oid:str}",
        P.DELETE,
        lambda oid: lambda _params, ctx: (200, state.delete_customer(oid, ctx)),
    )

    # --------------------------------------------------------------------- products and prices
    route("POST", "/v1/products", P.PRODUCT_CREATE, create(state.create_product))
    listed(
        "/v1/products",
        P.PRODUCT_LIST,
        state.products,
        "product",
        {"active": "active", "shippable": "shippable", "url": "url", "type": "type"},
        lambda p: [lambda o: o["id"] in p["ids"]] if "ids" in p else [],
    )
    route(
        "GET", "/v1/products/search", P.SEARCH, searching(state.products, "products", "/v1/products/search")
    )
    route("GET", "/v1/products/{oid:str}", P.RETRIEVE, fetch(state.product))
    route("POST", "/v1/products/{oid:str}", P.PRODUCT_UPDATE, update(state.update_product))
    route("POST", "/v1/prices", P.PRICE_CREATE, create(state.create_price))
    listed(
        "/v1/prices",
        P.PRICE_LIST,
        state.prices,
        "price",
        {"active": "active", "product": "product", "type": "type"},
        lambda p: [
            *([lambda o: o["currency"] == p["currency"].lower()] if "currency" in p else []),
            *([lambda o: o["lookup_key"] in p["lookup_keys"]] if "lookup_keys" in p else []),
            # The sandbox makes one-time Prices only, so no Price matches a `recurring` filter.
            *([lambda o: o["recurring"] is not None] if "recurring" in p else []),
        ],
    )
    route("GET", "/v1/prices/search", P.SEARCH, searching(state.prices, "prices", "/v1/prices/search"))
    route("GET", "/v1/prices/{oid:str}", P.RETRIEVE, fetch(state.price))
    route("POST", "/v1/prices/{oid:str}", P.PRICE_UPDATE, update(state.update_price))

    # ------------------------------------------------------------------------------- tax rates
    route("POST", "/v1/tax_rates", P.TAX_RATE_CREATE, create(state.create_tax_rate))
    listed(
        "/v1/tax_rates",
        P.TAX_RATE_LIST,
        state.tax_rates,
        "tax_rate",
        {"active": "active", "inclusive": "inclusive"},
    )
    route("GET", "/v1/tax_rates/{oid:str}", P.RETRIEVE, fetch(state.tax_rate))
    route("POST", "/v1/tax_rates/{oid:str}", P.TAX_RATE_UPDATE, update(state.update_tax_rate))

    # ------------------------------------------------- payment intents, charges, refunds, disputes
    route("POST", "/v1/payment_intents/{oid:str}/capture", P.PI_CAPTURE, update(state.capture_payment_intent))
    route("POST", "/v1/payment_intents/{oid:str}/cancel", P.PI_CANCEL, update(state.cancel_payment_intent))
    listed(
        "/v1/payment_intents", P.PI_LIST, state.payment_intents, "payment_intent", {"customer": "customer"}
    )
    route(
        "GET",
        "/v1/payment_intents/search",
        P.SEARCH,
        searching(state.payment_intents, "payment_intents", "/v1/payment_intents/search"),
    )
    listed(
        "/v1/charges",
        P.CHARGE_LIST,
        state.charges,
        "charge",
        {"customer": "customer", "payment_intent": "payment_intent", "transfer_group": "transfer_group"},
    )
    route("GET", "/v1/charges/search", P.SEARCH, searching(state.charges, "charges", "/v1/charges/search"))
    listed(
        "/v1/refunds",
        P.REFUND_LIST,
        state.refunds,
        "refund",
        {"charge": "charge", "payment_intent": "payment_intent"},
    )
    route(
        "POST",
        "/v1/refunds/{oid:str}/cancel",
        P.RETRIEVE,
        update(lambda oid, _p, ctx: state.cancel_refund(oid, ctx)),
    )
    listed(
        "/v1/disputes",
        P.DISPUTE_LIST,
        state.disputes,
        "dispute",
        {"charge": "charge", "payment_intent": "payment_intent"},
    )
    route(
        "GET",
        "/v1/balance_transactions/{oid:str}",
        P.RETRIEVE,
        fetch(lambda oid: state.get_or_404(state.balance_transactions, "balance_transaction", oid)),
    )
    return routes
