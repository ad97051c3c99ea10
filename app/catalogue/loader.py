"""Parse and validate ``pricing.toml`` into a frozen ``Catalogue``.

Validation never stops at the first problem: an operator fixing the file
wants the whole list at once, each line naming the pack (or asset) and the
field, e.g. ``pack 'pro': price: 49.999 has 3 decimals but USD allows 2``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from .model import LANGUAGES, Asset, Catalogue, Pack, Text
from .money import (
    MAX_AMOUNT_MINOR,
    exponent,
    format_money,
    from_minor,
    is_supported,
    minimum_charge,
    to_minor,
)

__all__ = [
    "PRICING_ENV",
    "CatalogueError",
    "default_pricing_path",
    "file_version",
    "load_catalogue",
    "parse_catalogue",
    "validate_catalogue",
]

PRICING_ENV: Final = "STOREFRONT_PRICING"

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SLUG_MAX = 64
_PRICE = re.compile(r"-?\d+(?:\.\d+)?")
_STRIPE_PRICE = re.compile(r"price_[A-Za-z0-9]+")

_TOP_KEYS: Final = ("assets", "packs")
_ASSET_KEYS: Final = ("name", "unit_singular", "unit_plural")
_ASSET_OPTIONAL: Final = ("low_balance",)
_PACK_REQUIRED: Final = ("id", "asset", "units", "price", "currency", "name", "description", "order")
_PACK_OPTIONAL: Final = (
    "bonus",
    "badge",
    "active",
    "stripe_price",
    "expires_after_days",
    "promotion_codes",
    "tax_inclusive",
)
MAX_EXPIRY_DAYS: Final = 36_500


class CatalogueError(ValueError):
    """The pricing file is unusable; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str], source: str = "pricing.toml") -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = source
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}:\n{lines}")


def default_pricing_path() -> Path:
    """``$STOREFRONT_PRICING`` if set, else ``./pricing.toml``."""
    return Path(os.environ.get(PRICING_ENV) or "pricing.toml")


def file_version(data: bytes) -> str:
    """Short content hash: lets logs, caches and pages say which pricing they used."""
    return hashlib.sha256(data).hexdigest()[:12]


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """Read and validate a pricing file; raises ``CatalogueError`` listing all problems."""
    file = Path(path) if path is not None else default_pricing_path()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CatalogueError([f"file: cannot read {file}: {exc.strerror or exc}"], str(file)) from exc
    return parse_catalogue(data, source=str(file))


def validate_catalogue(data: bytes) -> list[str]:
    """All problems in ``data``; an empty list means it would load."""
    try:
        parse_catalogue(data)
    except CatalogueError as exc:
        return list(exc.problems)
    return []


def parse_catalogue(
    data: bytes, source: str = "pricing.toml", *, loaded_at: datetime | None = None
) -> Catalogue:
    """Build a ``Catalogue`` from the raw bytes of a pricing file."""
    problems: list[str] = []
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CatalogueError([f"file: not valid UTF-8 ({exc.reason} at byte {exc.start})"], source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError([f"file: invalid TOML: {exc}"], source) from exc

    _unknown_keys(problems, "file", doc, _TOP_KEYS)
    assets = _parse_assets(problems, doc.get("assets"))
    # Check pack references against every declared asset, even invalid ones, so
    # a typo in an asset doesn't cascade into "unknown asset" on all its packs.
    raw_assets = doc.get("assets")
    declared = set(raw_assets) if isinstance(raw_assets, dict) else {a.id for a in assets}
    packs = _parse_packs(problems, doc.get("packs"), declared)
    if problems:
        raise CatalogueError(problems, source)
    return Catalogue(
        assets=tuple(assets),
        packs=tuple(packs),
        version=file_version(data),
        loaded_at=loaded_at or datetime.now(UTC),
        source=source,
    )


# --- helpers -----------------------------------------------------------------
# Each helper appends to ``problems`` and returns None for a bad value, so the
# caller can keep going and collect everything wrong with the file.


def _say(problems: list[str], ctx: str, field: str | None, message: str) -> None:
    problems.append(f"{ctx}: {field}: {message}" if field else f"{ctx}: {message}")


def _type_name(value: object) -> str:
    """TOML's name for a parsed value, so messages speak the file's language."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", dict: "table", list: "array"}
    return names.get(type(value), type(value).__name__)


def _unknown_keys(problems: list[str], ctx: str, table: dict[str, Any], allowed: Iterable[str]) -> None:
    known = tuple(allowed)
    for key in table:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(known)}"
        _say(problems, ctx, None, f"unknown key '{key}' ({hint})")


def _int(problems: list[str], ctx: str, field: str, value: object) -> int | None:
    # bool is an int subclass in Python; `units = true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        _say(problems, ctx, field, f"expected an integer, got {_type_name(value)} {value!r}")
        return None
    return value


def _text(problems: list[str], ctx: str, field: str, value: object) -> Text | None:
    if not isinstance(value, dict):
        _say(
            problems,
            ctx,
            field,
            f'expected a table like {{ en = "...", zh = "..." }}, got {_type_name(value)}',
        )
        return None
    ok = True
    for lang in value:
        if lang not in LANGUAGES:
            _say(problems, ctx, field, f"unknown language '{lang}' (expected {', '.join(LANGUAGES)})")
            ok = False
    for lang in LANGUAGES:
        if lang not in value:
            _say(problems, ctx, field, f"missing translation '{lang}'")
            ok = False
        elif not isinstance(value[lang], str):
            _say(problems, ctx, f"{field}.{lang}", f"expected a string, got {_type_name(value[lang])}")
            ok = False
        elif not value[lang].strip():
            _say(problems, ctx, f"{field}.{lang}", "must not be empty")
            ok = False
    return Text(en=value["en"].strip(), zh=value["zh"].strip()) if ok else None


def _slug_problem(value: str) -> str | None:
    if not _SLUG.fullmatch(value):
        return f"'{value}' is not a valid id (lowercase letters, digits and single hyphens, e.g. 'coins-500')"
    if len(value) > _SLUG_MAX:
        return f"'{value}' is longer than {_SLUG_MAX} characters"
    return None


def _parse_assets(problems: list[str], raw: object) -> list[Asset]:
    if raw is None:
        _say(problems, "file", "assets", "missing required table; declare assets as [assets.<id>]")
        return []
    if not isinstance(raw, dict):
        _say(problems, "file", "assets", f"expected a table of [assets.<id>] tables, got {_type_name(raw)}")
        return []
    if not raw:
        _say(problems, "file", "assets", "no assets declared")
    assets: list[Asset] = []
    for asset_id, body in raw.items():
        ctx = f"asset '{asset_id}'"
        bad_id = _slug_problem(asset_id)
        if bad_id:
            _say(problems, ctx, "id", bad_id)
        if not isinstance(body, dict):
            _say(problems, ctx, None, f"expected a table [assets.{asset_id}], got {_type_name(body)}")
            continue
        _unknown_keys(problems, ctx, body, _ASSET_KEYS + _ASSET_OPTIONAL)
        low_balance: int | None = None
        if "low_balance" in body:
            low_balance = _int(problems, ctx, "low_balance", body["low_balance"])
            if low_balance is not None and low_balance <= 0:
                _say(problems, ctx, "low_balance", f"must be a positive integer, got {low_balance}")
                low_balance = None
        texts: dict[str, Text | None] = {}
        for key in _ASSET_KEYS:
            if key not in body:
                _say(problems, ctx, key, "missing required field")
                texts[key] = None
            else:
                texts[key] = _text(problems, ctx, key, body[key])
        name, one, many = texts["name"], texts["unit_singular"], texts["unit_plural"]
        if bad_id is None and name and one and many:
            assets.append(
                Asset(id=asset_id, name=name, unit_singular=one, unit_plural=many, low_balance=low_balance)
            )
    return assets


def _parse_packs(problems: list[str], raw: object, asset_ids: set[str]) -> list[Pack]:
    if raw is None:
        _say(problems, "file", "packs", "missing; declare each pack as a [[packs]] table")
        return []
    if not isinstance(raw, list):
        _say(problems, "file", "packs", f"expected an array of [[packs]] tables, got {_type_name(raw)}")
        return []
    if not raw:
        _say(problems, "file", "packs", "no packs defined")
    packs: list[Pack] = []
    seen_ids: dict[str, int] = {}
    seen_stripe: dict[str, str] = {}
    for number, body in enumerate(raw, start=1):
        if not isinstance(body, dict):
            _say(problems, f"pack #{number}", None, f"expected a [[packs]] table, got {_type_name(body)}")
            continue
        pack = _parse_pack(problems, number, body, asset_ids)
        raw_id = body.get("id")
        if isinstance(raw_id, str):
            if raw_id in seen_ids:
                _say(
                    problems, f"pack '{raw_id}'", "id", f"duplicate id, also used by pack #{seen_ids[raw_id]}"
                )
            else:
                seen_ids[raw_id] = number
        stripe = body.get("stripe_price")
        if isinstance(stripe, str) and isinstance(raw_id, str):
            # Two packs on one Stripe Price would charge one pack's amount for the other.
            if stripe in seen_stripe:
                _say(
                    problems,
                    f"pack '{raw_id}'",
                    "stripe_price",
                    f"'{stripe}' is also used by pack '{seen_stripe[stripe]}'",
                )
            else:
                seen_stripe[stripe] = raw_id
        if pack is not None:
            packs.append(pack)
    return packs


def _parse_pack(problems: list[str], number: int, body: dict[str, Any], asset_ids: set[str]) -> Pack | None:
    """Validate one [[packs]] table; returns None if anything in it is wrong."""
    before = len(problems)
    raw_id = body.get("id")
    ctx = f"pack '{raw_id}'" if isinstance(raw_id, str) and raw_id else f"pack #{number}"

    _unknown_keys(problems, ctx, body, _PACK_REQUIRED + _PACK_OPTIONAL)
    for key in _PACK_REQUIRED:
        if key not in body:
            _say(problems, ctx, key, "missing required field")

    pack_id = None
    if "id" in body:
        if not isinstance(raw_id, str):
            _say(problems, ctx, "id", f"expected a string, got {_type_name(raw_id)}")
        elif bad := _slug_problem(raw_id):
            _say(problems, ctx, "id", bad)
        else:
            pack_id = raw_id

    asset = None
    if "asset" in body:
        value = body["asset"]
        if not isinstance(value, str):
            _say(problems, ctx, "asset", f"expected a string, got {_type_name(value)}")
        elif value not in asset_ids:
            close = difflib.get_close_matches(value, sorted(asset_ids), n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else f"declared: {', '.join(sorted(asset_ids)) or 'none'}"
            )
            _say(problems, ctx, "asset", f"unknown asset '{value}' ({hint})")
        else:
            asset = value

    units = None
    if "units" in body and (units := _int(problems, ctx, "units", body["units"])) is not None and units <= 0:
        _say(problems, ctx, "units", f"must be a positive integer, got {units}")
        units = None

    bonus: int | None = 0
    if "bonus" in body and (bonus := _int(problems, ctx, "bonus", body["bonus"])) is not None and bonus < 0:
        _say(problems, ctx, "bonus", f"must be zero or more, got {bonus}")
        bonus = None

    order = _int(problems, ctx, "order", body["order"]) if "order" in body else None

    expires_after_days: int | None = None
    if "expires_after_days" in body:
        expires_after_days = _int(problems, ctx, "expires_after_days", body["expires_after_days"])
        if expires_after_days is not None and not 1 <= expires_after_days <= MAX_EXPIRY_DAYS:
            _say(
                problems,
                ctx,
                "expires_after_days",
                f"must be between 1 and {MAX_EXPIRY_DAYS}, got {expires_after_days}",
            )
            expires_after_days = None

    active = _flag(problems, ctx, body, "active", default=True)
    promotion_codes = _flag(problems, ctx, body, "promotion_codes", default=False)
    tax_inclusive = _flag(problems, ctx, body, "tax_inclusive", default=False)

    currency = None
    if "currency" in body:
        value = body["currency"]
        if not isinstance(value, str):
            _say(problems, ctx, "currency", f"expected an ISO 4217 code string, got {_type_name(value)}")
        elif not is_supported(value.strip()):
            _say(
                problems, ctx, "currency", f"unknown currency '{value}' (not an ISO 4217 code Stripe accepts)"
            )
        else:
            currency = value.strip().upper()

    price, price_minor = _price(problems, ctx, body, currency)

    name = _text(problems, ctx, "name", body["name"]) if "name" in body else None
    description = _text(problems, ctx, "description", body["description"]) if "description" in body else None
    badge = _text(problems, ctx, "badge", body["badge"]) if "badge" in body else None

    stripe_price = body.get("stripe_price")
    if stripe_price is not None and (
        not isinstance(stripe_price, str) or not _STRIPE_PRICE.fullmatch(stripe_price)
    ):
        _say(
            problems,
            ctx,
            "stripe_price",
            f"{stripe_price!r} is not a Stripe Price id (expected 'price_' followed by letters and digits)",
        )

    if len(problems) > before:
        return None
    # Everything below was checked above; the asserts narrow types for mypy.
    assert pack_id
    assert asset
    assert units
    assert bonus is not None
    assert order is not None
    assert currency
    assert price is not None
    assert price_minor is not None
    assert name
    assert description
    return Pack(
        id=pack_id,
        asset=asset,
        units=units,
        bonus=bonus,
        price=price,
        price_minor=price_minor,
        currency=currency,
        name=name,
        description=description,
        order=order,
        active=active,
        badge=badge,
        stripe_price=stripe_price,
        expires_after_days=expires_after_days,
        promotion_codes=promotion_codes,
        tax_inclusive=tax_inclusive,
    )


def _flag(problems: list[str], ctx: str, body: dict[str, Any], key: str, *, default: bool) -> bool:
    """A true/false field; anything else (``1``, ``"yes"``) is a problem, not a guess."""
    value = body.get(key, default)
    if not isinstance(value, bool):
        _say(problems, ctx, key, f"expected true or false, got {_type_name(value)} {value!r}")
        return default
    return value


def _price(
    problems: list[str], ctx: str, body: dict[str, Any], currency: str | None
) -> tuple[Decimal | None, int | None]:
    """Check ``price`` and convert it to (major Decimal, minor int) for ``currency``."""
    if "price" not in body:
        return None, None
    value = body["price"]
    if isinstance(value, float):
        # A TOML float is already binary floating point; 0.1 + 0.2 territory.
        _say(
            problems,
            ctx,
            "price",
            f'{value!r} is a TOML float, which cannot hold money exactly; quote it: price = "{value!r}"',
        )
        return None, None
    if not isinstance(value, str):
        _say(
            problems,
            ctx,
            "price",
            f'expected a quoted decimal string such as "9.99", got {_type_name(value)}',
        )
        return None, None
    text = value.strip()
    if not _PRICE.fullmatch(text):
        _say(problems, ctx, "price", f"'{value}' is not a decimal amount like \"9.99\"")
        return None, None
    amount = Decimal(text)
    if amount <= 0:
        _say(problems, ctx, "price", f"must be greater than zero, got {text}")
        return None, None
    if currency is None:
        return None, None  # the currency problem is already reported
    places = exponent(currency)
    decimals = len(text.partition(".")[2])
    if decimals > places:
        _say(problems, ctx, "price", f"{text} has {decimals} decimals but {currency} allows {places}")
        return None, None
    minor = to_minor(amount, currency)
    floor = minimum_charge(currency)
    if floor is not None and minor < floor:
        _say(
            problems,
            ctx,
            "price",
            f"{text} {currency} is below Stripe's minimum charge of {format_money(floor, currency)}",
        )
        return None, None
    if minor > MAX_AMOUNT_MINOR:
        _say(
            problems,
            ctx,
            "price",
            f"{text} {currency} is above Stripe's maximum of {format_money(MAX_AMOUNT_MINOR, currency)}",
        )
        return None, None
    return from_minor(minor, currency), minor
