"""Decoding of Stripe's form encoding (bracket keys) and declarative validation of parameters.

Stripe's API takes `application/x-www-form-urlencoded` bodies and query strings whose keys nest
with brackets (`line_items[0][price_data][currency]`, `metadata[k]`, `expand[]`). We decode them to
nested dicts, then validate against small param specs so errors carry Stripe's wording and `param`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from .errors import StripeError, invalid, missing_param, unknown_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEG = re.compile(r"\[([^\[\]]*)\]")


def parse_form(raw: bytes | str) -> dict[str, Any]:
    """Decode a form body or query string into nested dicts (lists only for `[]` appends)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return decode_pairs(parse_qsl(text, keep_blank_values=True))


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *_SEG.findall(match.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if part != "":
                    raise invalid(f"Invalid array: {key}", param=key)
                if last:
                    node.append(value)
                else:
                    child: Any = [] if parts[i + 1] == "" else {}
                    node.append(child)
                    node = child
                continue
            if last:
                node[part] = value
                break
            existing = node.get(part)
            want_list = parts[i + 1] == ""
            if existing is None or isinstance(existing, str):
                if isinstance(existing, str) and existing != "":
                    raise invalid(f"Invalid hash: {_fmt(parts[: i + 1])}", param=_fmt(parts[: i + 1]))
                existing = [] if want_list else {}
                node[part] = existing
            elif want_list and not isinstance(existing, list):
                raise invalid(f"Invalid array: {_fmt(parts[: i + 1])}", param=_fmt(parts[: i + 1]))
            node = existing
    return root


def _fmt(parts: list[str]) -> str:
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


def child(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if path else str(key)


class Spec:
    """A parameter's expected shape; `parse` returns the typed value or raises a Stripe error."""

    required: bool = False

    def parse(self, value: Any, path: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


def _scalar(value: Any, path: str, what: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"Invalid {what}: {path} must be a {what}, not a hash or array", param=path)
    return value


@dataclass
class Str(Spec):
    max_length: int = 5000
    required: bool = False

    def parse(self, value: Any, path: str) -> str:
        text = _scalar(value, path, "string")
        if len(text) > self.max_length:
            raise invalid(
                f"Invalid string: {text[:40]}...; must be at most {self.max_length} characters", param=path
            )
        return text


@dataclass
class Url(Spec):
    required: bool = False

    def parse(self, value: Any, path: str) -> str:
        text = _scalar(value, path, "string")
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > 5000:
            raise invalid("Not a valid URL", param=path, code="url_invalid")
        return text


_INT = re.compile(r"^-?\d{1,18}$")


@dataclass
class Int(Spec):
    minimum: int | None = None
    maximum: int | None = None
    required: bool = False

    def parse(self, value: Any, path: str) -> int:
        text = _scalar(value, path, "integer")
        if not _INT.match(text):
            raise invalid(f"Invalid integer: {text[:100]}", param=path)
        return _bounded(int(text), self.minimum, self.maximum, path)


N = TypeVar("N", int, Decimal)


def _bounded(number: N, minimum: N | None, maximum: N | None, path: str) -> N:
    """Stripe's range errors, shared by integers and decimals."""
    if minimum is not None and number < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param=path)
    if maximum is not None and number > maximum:
        raise invalid(f"This value must be less than or equal to {maximum}.", param=path)
    return number


@dataclass
class Bool(Spec):
    required: bool = False

    def parse(self, value: Any, path: str) -> bool:
        text = _scalar(value, path, "boolean")
        if text not in ("true", "false"):
            raise invalid(f"Invalid boolean: {text[:100]}", param=path)
        return text == "true"


@dataclass
class Enum(Spec):
    values: tuple[str, ...] = ()
    required: bool = False

    def parse(self, value: Any, path: str) -> str:
        text = _scalar(value, path, "string")
        if text not in self.values:
            options = ", ".join(self.values[:-1]) + (", or " if len(self.values) > 2 else " or ")
            options += self.values[-1]
            raise invalid(f"Invalid {path}: must be one of {options}", param=path)
        return text


@dataclass
class Hash(Spec):
    fields: dict[str, Spec] = field(default_factory=dict)
    required: bool = False

    def parse(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {path} must be a hash", param=path)
        return parse_params(value, self.fields, path)


@dataclass
class Array(Spec):
    item: Spec = field(default_factory=Str)
    max_items: int = 100
    required: bool = False

    def parse(self, value: Any, path: str) -> list[Any]:
        items: list[Any]
        if isinstance(value, list):
            items = value
        elif isinstance(value, dict):
            if not all(k.isdigit() for k in value):
                raise invalid(f"Invalid array: {path} must be an array", param=path)
            items = [value[k] for k in sorted(value, key=int)]
        else:
            raise invalid(f"Invalid array: {path} must be an array", param=path)
        if len(items) > self.max_items:
            raise invalid(f"{path} must have at most {self.max_items} elements", param=path)
        return [self.item.parse(v, child(path, i)) for i, v in enumerate(items)]


_NUMBER = re.compile(r"^-?\d{1,12}(\.\d{1,12})?$")


@dataclass
class Number(Spec):
    """A decimal parameter (`percent_off`, `percentage`): exact, as a Decimal, never a float."""

    minimum: Decimal | None = None
    maximum: Decimal | None = None
    required: bool = False

    def parse(self, value: Any, path: str) -> Decimal:
        text = _scalar(value, path, "number")
        if not _NUMBER.match(text):
            raise invalid(f"Invalid decimal: {text[:100]}", param=path)
        return _bounded(Decimal(text), self.minimum, self.maximum, path)


@dataclass
class Unsimulated(Spec):
    """A parameter Stripe accepts whose effect the sandbox does not simulate: refused, never ignored."""

    required: bool = False

    def parse(self, value: Any, path: str) -> Any:
        raise not_simulated(path)


@dataclass
class Clearable(Spec):
    """An update parameter whose empty value unsets the field (`description=""`), as Stripe's."""

    inner: Spec = field(default_factory=Str)
    required: bool = False

    def parse(self, value: Any, path: str) -> Any:
        return None if value == "" else self.inner.parse(value, path)


def not_simulated(path: str) -> StripeError:
    return invalid(
        f"The Stripe sandbox does not simulate `{path}`; leave it out, or use real Stripe.", param=path
    )


@dataclass
class Metadata(Spec):
    """Stripe's metadata limits: 50 keys, 40-char keys, 500-char values.

    With `patch` (updates) an empty value deletes that key and `None` stands for the whole
    `metadata=""`, which clears every key, as Stripe's update endpoints do.
    """

    required: bool = False
    patch: bool = False

    def parse(self, value: Any, path: str) -> dict[str, Any] | None:
        if value == "":
            return None if self.patch else {}
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {path} must be a hash", param=path)
        if len(value) > 50:
            raise invalid("You can only specify up to 50 keys in metadata.", param=path)
        out: dict[str, str | None] = {}
        for key, item in value.items():
            key_path = child(path, key)
            if not isinstance(item, str):
                raise invalid(f"Invalid string: {key_path} must be a string", param=key_path)
            if len(key) > 40:
                raise invalid(
                    f"Metadata keys can have up to 40 characters, but you passed in a key that is "
                    f"{len(key)} characters. Invalid key: {key}",
                    param=key_path,
                )
            if len(item) > 500:
                raise invalid(
                    f"Metadata values can have up to 500 characters, but you passed in a value that is "
                    f"{len(item)} characters. Invalid value: {item[:40]}...",
                    param=key_path,
                )
            if item != "":
                out[key] = item
            elif self.patch:
                out[key] = None
        return out


def apply_metadata(current: dict[str, str], patch: dict[str, Any] | None) -> dict[str, str]:
    """Stripe's metadata update: keys merge, an empty value deletes one, `metadata=""` clears all."""
    if patch is None:
        return {}
    merged = {**current, **patch}
    return {k: v for k, v in merged.items() if v is not None}


@dataclass
class RangeOrInt(Spec):
    """`created`-style filters: an integer or a hash of gt/gte/lt/lte."""

    required: bool = False

    def parse(self, value: Any, path: str) -> dict[str, int]:
        if isinstance(value, str):
            return {"eq": Int().parse(value, path)}
        bounds = (
            parse_params(value, {k: Int() for k in ("gt", "gte", "lt", "lte")}, path)
            if isinstance(value, dict)
            else None
        )
        if bounds is None:
            raise invalid(f"Invalid {path}: must be an integer or a hash", param=path)
        return bounds


def parse_params(data: Mapping[str, Any], spec: Mapping[str, Spec], path: str = "") -> dict[str, Any]:
    """Validate a decoded hash: unknown keys and missing required keys fail like Stripe."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        sub = spec.get(key)
        key_path = child(path, key)
        if sub is None:
            raise unknown_param(key_path)
        if value == "" and not isinstance(sub, Metadata | Clearable):
            continue  # Stripe reads an empty value as "unset".
        out[key] = sub.parse(value, key_path)
    for key, sub in spec.items():
        if sub.required and key not in out:
            raise missing_param(child(path, key))
    return out


def looks_like_email(value: str) -> bool:
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain and " " not in value and len(value) <= 800


def expand_list(params: Mapping[str, Any]) -> list[str]:
    value = params.get("expand")
    return list(value) if isinstance(value, list) else []


EXPAND = Array(Str(), max_items=100)


def bad(message: str, param: str | None = None) -> StripeError:
    return invalid(message, param=param)
