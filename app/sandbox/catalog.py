"""Products and Prices: the catalogue a Checkout line item's `price` names.

Prices made here, by `register_price` (the control API's shortcut) or by `default_price_data`,
are the same objects `GET /v1/prices/{id}` serves and Checkout charges; `line_price` is what
Checkout asks for a `line_items[].price`.
"""

from __future__ import annotations

from . import objects
from .clock import Clock
from .errors import invalid, missing_param
from .events import Emitter, RequestContext
from .forms import apply_metadata, child
from .ids import new_id
from .money import SUPPORTED
from .objects import Obj
from .params import MAX_UNIT_AMOUNT
from .store import Store

_PRODUCT_FIELDS = (
    "name",
    "active",
    "description",
    "images",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
)


def _currency(value: str, param: str) -> str:
    currency = value.lower()
    if currency not in SUPPORTED:
        raise invalid(
            f"Invalid currency: {value}. Stripe currently supports these currencies: "
            + ", ".join(sorted(SUPPORTED)),
            param=param,
        )
    return currency


def _unit_amount(params: Obj, where: str) -> int:
    """`unit_amount`, or a whole-number `unit_amount_decimal` (the sandbox has no sub-minor units)."""
    amount_path, decimal_path = child(where, "unit_amount"), child(where, "unit_amount_decimal")
    if "unit_amount" in params and "unit_amount_decimal" in params:
        raise invalid(
            f"You may only specify one of these parameters: {amount_path}, {decimal_path}.", param=amount_path
        )
    if "unit_amount" in params:
        amount: int = params["unit_amount"]
        return amount
    decimal = params.get("unit_amount_decimal")
    if decimal is None:
        raise missing_param(amount_path)
    if not decimal.isdigit():
        raise invalid(
            "The sandbox supports only whole minor units in unit_amount_decimal.", param=decimal_path
        )
    if int(decimal) > MAX_UNIT_AMOUNT:
        raise invalid(f"This value must be less than or equal to {MAX_UNIT_AMOUNT}.", param=decimal_path)
    return int(decimal)


def line_price(store: Store, price_id: str, param: str) -> tuple[Obj, str]:
    """The Price a Checkout line item names and its product's name (the item's description)."""
    price = store.prices.get(price_id)
    if price is None:
        raise invalid(f"No such price: '{price_id}'", param=param, code="resource_missing")
    if not price["active"]:
        raise invalid(
            f"The price specified ({price_id}) is inactive. This field only accepts active prices.",
            param=param,
        )
    product = store.products.by_id[price["product"]]
    if not product["active"]:
        raise invalid(
            f"The price specified ({price_id}) belongs to product {product['id']}, which is inactive.",
            param=param,
        )
    return price, str(product["name"])


class Catalog:
    """Products and their Prices; changes emit `product.*` and `price.*` events as Stripe does."""

    def __init__(self, store: Store, clock: Clock, emitter: Emitter) -> None:
        self._store = store
        self._clock = clock
        self._emit = emitter.emit

    # ---------------------------------------------------------------------------- products

    def create_product(self, params: Obj, ctx: RequestContext) -> Obj:
        store = self._store
        product_id = params.get("id") or new_id("prod_", 14)
        if store.products.get(product_id) is not None:
            raise invalid(f"Product already exists: {product_id}", param="id", code="resource_already_exists")
        fields = {
            **params,
            "marketing_features": params.get("marketing_features", params.get("features", [])),
        }
        product = objects.product(product_id, params["name"], self._clock.now(), fields)
        if "type" in params:
            product["type"] = params["type"]
        default = params.get("default_price_data")
        price: Obj | None = None
        if default is not None:
            price = self._new_price(
                {**default, "currency": _currency(default["currency"], "default_price_data[currency]")},
                product_id,
                "default_price_data",
            )
            product["default_price"] = price["id"]
        store.products.add(product)
        self._emit("product.created", product, ctx)
        if price is not None:
            store.prices.add(price)
            self._emit("price.created", price, ctx)
        return product

    def product(self, product_id: str) -> Obj:
        return self._store.get_or_404(self._store.products, "product", product_id)

    def update_product(self, product_id: str, params: Obj, ctx: RequestContext) -> Obj:
        product = self.product(product_id)
        changes: Obj = {k: params[k] for k in _PRODUCT_FIELDS if k in params}
        for name in ("marketing_features", "features"):
            if name in params:
                changes["marketing_features"] = [{"name": f["name"]} for f in params[name] or []]
        if changes.get("images", []) is None:
            changes["images"] = []
        if "default_price" in params:
            price = self._store.prices.get(params["default_price"])
            if price is None or price["product"] != product_id:
                raise invalid(
                    f"No such price: '{params['default_price']}' on product {product_id}",
                    param="default_price",
                    code="resource_missing",
                )
            if not price["active"]:
                raise invalid("The default price must be active.", param="default_price")
            changes["default_price"] = price["id"]
        if "metadata" in params:
            changes["metadata"] = apply_metadata(product["metadata"], params["metadata"])
        self._apply("product", product, changes, ctx)
        return product

    def _apply(self, kind: str, obj: Obj, changes: Obj, ctx: RequestContext) -> None:
        """Set what changed; one `<kind>.updated` event names the previous values."""
        previous = {k: obj[k] for k, v in changes.items() if obj[k] != v}
        if not previous:
            return
        obj.update(changes)
        if kind == "product":
            obj["updated"] = self._clock.now()
        self._emit(f"{kind}.updated", obj, ctx, previous)

    # ------------------------------------------------------------------------------ prices

    def _new_price(self, params: Obj, product_id: str, where: str = "") -> Obj:
        if params.get("billing_scheme", "per_unit") != "per_unit":
            raise invalid(
                "The Stripe sandbox does not simulate `billing_scheme=tiered`.",
                param=child(where, "billing_scheme"),
            )
        return objects.price(
            new_id("price_", 24),
            product_id,
            params["currency"],
            _unit_amount(params, where),
            self._clock.now(),
            active=params.get("active", True),
            nickname=params.get("nickname"),
            lookup_key=params.get("lookup_key"),
            metadata=params.get("metadata", {}),
            tax_behavior=params.get("tax_behavior", "unspecified"),
        )

    def create_price(self, params: Obj, ctx: RequestContext) -> Obj:
        store = self._store
        currency = _currency(params["currency"], "currency")
        if ("product" in params) == ("product_data" in params):
            raise invalid("You must specify exactly one of `product` or `product_data`.", param="product")
        product: Obj | None = None
        if "product" in params:
            product_id = params["product"]
            if store.products.get(product_id) is None:
                raise invalid(f"No such product: '{product_id}'", param="product", code="resource_missing")
        else:
            data = params["product_data"]
            product_id = data.get("id") or new_id("prod_", 14)
            if store.products.get(product_id) is not None:
                raise invalid(
                    f"Product already exists: {product_id}",
                    param="product_data[id]",
                    code="resource_already_exists",
                )
            product = objects.product(product_id, data["name"], self._clock.now(), data)
        price = self._new_price({**params, "currency": currency}, product_id)
        self._claim_lookup_key(price, params.get("transfer_lookup_key", False), ctx)
        if product is not None:
            store.products.add(product)
            self._emit("product.created", product, ctx)
        store.prices.add(price)
        self._emit("price.created", price, ctx)
        return price

    def _claim_lookup_key(self, price: Obj, transfer: bool, ctx: RequestContext) -> None:
        """A lookup key names one price: taking one in use needs `transfer_lookup_key`."""
        key = price["lookup_key"]
        if key is None:
            return
        holder = next(
            (
                p
                for p in self._store.prices.by_id.values()
                if p["lookup_key"] == key and p["id"] != price["id"]
            ),
            None,
        )
        if holder is None:
            return
        if not transfer:
            raise invalid(
                f"A price (`{holder['id']}`) already uses that lookup key.",
                param="lookup_key",
                code="lookup_key_exists",
            )
        holder["lookup_key"] = None
        self._emit("price.updated", holder, ctx, {"lookup_key": key})

    def price(self, price_id: str) -> Obj:
        return self._store.get_or_404(self._store.prices, "price", price_id)

    def update_price(self, price_id: str, params: Obj, ctx: RequestContext) -> Obj:
        price = self.price(price_id)
        changes: Obj = {k: params[k] for k in ("active", "nickname", "lookup_key") if k in params}
        behavior = params.get("tax_behavior")
        if behavior is not None and behavior != price["tax_behavior"]:
            if price["tax_behavior"] != "unspecified":
                raise invalid(
                    "The tax behavior of a price cannot be changed once it is `inclusive` or `exclusive`.",
                    param="tax_behavior",
                )
            changes["tax_behavior"] = behavior
        if "metadata" in params:
            changes["metadata"] = apply_metadata(price["metadata"], params["metadata"])
        if changes.get("lookup_key") not in (None, price["lookup_key"]):
            self._claim_lookup_key({**price, **changes}, params.get("transfer_lookup_key", False), ctx)
        self._apply("price", price, changes, ctx)
        return price

    def register_price(
        self,
        *,
        currency: str,
        unit_amount: int,
        product_name: str,
        price_id: str | None = None,
        product_id: str | None = None,
    ) -> Obj:
        """The control API's shortcut: a Price (and its Product) that already existed, no events."""
        currency = currency.lower()
        if currency not in SUPPORTED:
            raise invalid(f"Invalid currency: {currency}.", param="currency")
        if not 0 <= unit_amount <= MAX_UNIT_AMOUNT:
            raise invalid("unit_amount must be between 0 and 99999999.", param="unit_amount")
        pid = price_id or new_id("price_")
        if not pid.startswith("price_"):
            raise invalid("Price ids start with `price_`.", param="id")
        store = self._store
        now = self._clock.now()
        product = store.products.get(product_id) if product_id else None
        if product is None:
            product = store.products.add(
                objects.product(product_id or new_id("prod_", 14), product_name, now, {})
            )
        existing = store.prices.get(pid)
        if existing is not None:
            existing.update(currency=currency, unit_amount=unit_amount, unit_amount_decimal=str(unit_amount))
            existing.update(product=product["id"], active=True)
            store.mark_dirty()
            return existing
        price = objects.price(pid, product["id"], currency, unit_amount, now, active=True)
        store.prices.add(price)
        if product["default_price"] is None:
            product["default_price"] = pid
        store.mark_dirty()
        return price
