"""The `/v1` routes of the catalogue, customers, discounts, tax rates and payment follow-ups.

Kept apart from `api.py` (Checkout Sessions, events, refunds) so each file reads as one area; both
share `Api.call` (auth, versions, idempotency, errors) and `expand`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, Response, get, post
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
        decorator = post(path, status_code=200) if method == "POST" else get(path)

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

    def listing(
        coll: Collection, kind: str, url: str, extra: Callable[[Obj], list[Match]] | None = None
    ) -> Callable[[], Operation]:
        return lambda: (
            lambda params, _ctx: (
                200,
                page_of(state, coll, kind, url, params, extra(params) if extra else []),
            )
        )

    def searching(coll: Collection, resource: str, url: str) -> Callable[[], Operation]:
        return lambda: (
            lambda params, _ctx: (
                200,
                expand(state, search(coll, resource, params, url), expand_list(params)),
            )
        )

    # ------------------------------------------------------------------ coupons, promotion codes
    route("POST", "/v1/coupons", P.COUPON_CREATE, create(state.create_coupon))
    route("GET", "/v1/coupons", P.LIST_PAGE, listing(state.coupons, "coupon", "/v1/coupons"))
    route("GET", "/v1/coupons/{oid:str}", P.RETRIEVE, fetch(state.coupon))
    route("POST", "/v1/coupons/{oid:str}", P.COUPON_UPDATE, update(state.update_coupon))
    route("POST", "/v1/promotion_codes", P.PROMOTION_CODE_CREATE, create(state.create_promotion_code))
    route(
        "GET",
        "/v1/promotion_codes",
        P.PROMOTION_CODE_LIST,
        listing(
            state.promotion_codes,
            "promotion_code",
            "/v1/promotion_codes",
            lambda p: [
                *filters(p, {"active": "active", "code": "code", "customer": "customer"}),
                *([lambda o: o["promotion"]["coupon"] == p["coupon"]] if "coupon" in p else []),
            ],
        ),
    )
    route("GET", "/v1/promotion_codes/{oid:str}", P.RETRIEVE, fetch(state.promotion_code))
    route(
        "POST", "/v1/promotion_codes/{oid:str}", P.PROMOTION_CODE_UPDATE, update(state.update_promotion_code)
    )

    # -------------------------------------------------------------------------------- customers
    route("POST", "/v1/customers", P.CUSTOMER_CREATE, create(state.create_customer))
    route(
        "GET",
        "/v1/customers",
        P.CUSTOMER_LIST,
        listing(state.customers, "customer", "/v1/customers", lambda p: filters(p, {"email": "email"})),
    )
    route(
        "GET",
        "/v1/customers/search",
        P.SEARCH,
        searching(state.customers, "customers", "/v1/customers/search"),
    )
    route("GET", "/v1/customers/{oid:str}", P.RETRIEVE, fetch(state.customer))
    route("POST", "/v1/customers/{oid:str}", P.CUSTOMER_UPDATE, update(state.update_customer))

    # --------------------------------------------------------------------- products and prices
    route("POST", "/v1/products", P.PRODUCT_CREATE, create(state.create_product))
    route(
        "GET",
        "/v1/products",
        P.PRODUCT_LIST,
        listing(
            state.products,
            "product",
            "/v1/products",
            lambda p: [
                *filters(p, {"active": "active", "shippable": "shippable", "url": "url", "type": "type"}),
                *([lambda o: o["id"] in p["ids"]] if "ids" in p else []),
            ],
        ),
    )
    route(
        "GET", "/v1/products/search", P.SEARCH, searching(state.products, "products", "/v1/products/search")
    )
    route("GET", "/v1/products/{oid:str}", P.RETRIEVE, fetch(state.product))
    route("POST", "/v1/products/{oid:str}", P.PRODUCT_UPDATE, update(state.update_product))
    route("POST", "/v1/prices", P.PRICE_CREATE, create(state.create_price))
    route(
        "GET",
        "/v1/prices",
        P.PRICE_LIST,
        listing(
            state.prices,
            "price",
            "/v1/prices",
            lambda p: [
                *filters(p, {"active": "active", "product": "product", "type": "type"}),
                *([lambda o: o["currency"] == p["currency"].lower()] if "currency" in p else []),
                *([lambda o: o["lookup_key"] in p["lookup_keys"]] if "lookup_keys" in p else []),
                # The sandbox makes one-time Prices only, so no Price matches a `recurring` filter.
                *([lambda o: o["recurring"] is not None] if "recurring" in p else []),
            ],
        ),
    )
    route("GET", "/v1/prices/search", P.SEARCH, searching(state.prices, "prices", "/v1/prices/search"))
    route("GET", "/v1/prices/{oid:str}", P.RETRIEVE, fetch(state.price))
    route("POST", "/v1/prices/{oid:str}", P.PRICE_UPDATE, update(state.update_price))

    # ------------------------------------------------------------------------------- tax rates
    route("POST", "/v1/tax_rates", P.TAX_RATE_CREATE, create(state.create_tax_rate))
    route(
        "GET",
        "/v1/tax_rates",
        P.TAX_RATE_LIST,
        listing(
            state.tax_rates,
            "tax_rate",
            "/v1/tax_rates",
            lambda p: filters(p, {"active": "active", "inclusive": "inclusive"}),
        ),
    )
    route("GET", "/v1/tax_rates/{oid:str}", P.RETRIEVE, fetch(state.tax_rate))
    route("POST", "/v1/tax_rates/{oid:str}", P.TAX_RATE_UPDATE, update(state.update_tax_rate))
    return routes
