"""Stripe's published OpenAPI spec and example fixtures, as validators for sandbox conformance tests.

The reference files live outside the repo in ../shared/stripe. Without them the tests skip locally
but fail under CI, so a missing checkout can't silently pass.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, validators

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared" / "stripe"
SPEC = SHARED / "spec3.2023-08-16.json"
FIXTURES = SHARED / "fixtures3.2026-07.json"


def require_shared() -> None:
    if SPEC.exists() and FIXTURES.exists():
        return
    reason = f"Stripe reference data missing at {SHARED}"
    if os.environ.get("CI"):
        pytest.fail(reason + " (required under CI)")
    pytest.skip(reason)


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: `nullable` becomes anyOf-with-null; `x-*` keys go."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if not k.startswith("x-") and k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def spec() -> dict[str, Any]:
    require_shared()
    data: dict[str, Any] = json.loads(SPEC.read_text())
    return data


@cache
def _components() -> dict[str, Any]:
    return {"schemas": _convert(spec()["components"]["schemas"])}


@cache
def fixtures() -> dict[str, Any]:
    require_shared()
    data: dict[str, Any] = json.loads(FIXTURES.read_text())["resources"]
    return data


@cache
def response_validator(name: str) -> Draft7Validator:
    return Draft7Validator({"components": _components(), "$ref": f"#/components/schemas/{name}"})


def _stripe_class_fields(object_name: str) -> set[str]:
    from stripe._object_classes import get_object_class

    cls = get_object_class("V1", object_name)
    assert cls is not None, f"stripe has no class for {object_name}"
    names: set[str] = set()
    for klass in cls.__mro__:
        names |= {
            n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_") and n != "OBJECT_NAME"
        }
    return names


def conformance_problems(obj: dict[str, Any], schema: str | None = None) -> list[str]:
    """Spec validation, fixture key coverage and SDK class knowledge, recursing into lists/events."""
    problems: list[str] = []
    kind = schema or obj.get("object")
    if kind == "list":
        for item in obj["data"]:
            problems += conformance_problems(item)
        return problems
    assert isinstance(kind, str), obj
    known = _stripe_class_fields(kind) if kind != "error" else set()
    expanded: list[dict[str, Any]] = []
    # An event's `data.object` is untyped in the spec and checked on its own below.
    checked = obj if kind == "event" else _collapse(obj, kind, expanded)
    for err in response_validator(kind).iter_errors(checked):
        if err.validator == "required" and not err.absolute_path and _removed_since_spec(err, known):
            continue
        problems.append(f"{kind}: schema: {'/'.join(map(str, err.absolute_path))}: {err.message[:300]}")
    fixture = fixtures().get(kind)
    if fixture is not None:
        missing = set(fixture) - set(obj)
        if missing:
            problems.append(f"{kind}: keys missing vs fixture: {sorted(missing)}")
    unknown = set(obj) - known if kind != "error" else set()
    if unknown:
        problems.append(f"{kind}: keys unknown to the stripe SDK class: {sorted(unknown)}")
    for inner in expanded:
        problems += conformance_problems(inner)
    if kind == "event":
        problems += conformance_problems(obj["data"]["object"])
    return problems


def response_problems(path: str, method: str, body: dict[str, Any]) -> list[str]:
    """Validate an answer's envelope against its operation's own 200 schema (search results have
    no component schema of their own), then each object in it as `conformance_problems` does."""
    schema = spec()["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    validator = Draft7Validator({"components": _components(), **_convert(schema)})
    problems = [
        f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
        for e in validator.iter_errors({**body, "data": []})
    ]
    return problems + [p for item in body.get("data", []) for p in conformance_problems(item)]


def _collapse(obj: dict[str, Any], kind: str, expanded: list[dict[str, Any]]) -> dict[str, Any]:
    """The object with each field the spec marks expandable put back to its id (when expanded);
    the expanded objects are collected to be checked as objects of their own kind."""
    properties = spec()["components"]["schemas"].get(kind, {}).get("properties", {})
    out = dict(obj)
    for key, value in obj.items():
        if isinstance(value, dict) and "id" in value and "x-expansionResources" in properties.get(key, {}):
            expanded.append(value)
            out[key] = value["id"]
    return out


def _removed_since_spec(err: Any, known: set[str]) -> bool:
    """A top-level field the 2023 spec requires but the pinned API version dropped or renamed
    (`promotion_code.coupon` became `promotion.coupon`): the SDK's class no longer declares it,
    so serving it would fail the SDK check below instead."""
    missing = re.findall(r"'([^']+)' is a required property", err.message)
    return bool(known) and bool(missing) and all(name not in known for name in missing)


# ------------------------------------------------------------------------------ request bodies

_DIGITS = re.compile(r"^-?\d+$")


def _is_int(_checker: Any, value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and bool(_DIGITS.match(value))
    )


def _is_bool(_checker: Any, value: Any) -> bool:
    return isinstance(value, bool) or value in ("true", "false")


def _is_number(_checker: Any, value: Any) -> bool:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, int | float) and not isinstance(value, bool)


_FormValidator = validators.extend(
    Draft7Validator,
    type_checker=Draft7Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_int, "boolean": _is_bool, "number": _is_number}
    ),
)


def decode_form(body: str) -> dict[str, Any]:
    """Bracket keys -> nested dicts; hashes whose keys are all indices become lists."""
    from urllib.parse import parse_qsl

    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def request_problems(method: str, path: str, body: str) -> list[str]:
    """Validate a form-encoded request body against the spec's request schema for that path."""
    template = _path_template(path)
    operation = spec()["paths"][template][method.lower()]
    schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    validator = _FormValidator({"components": _components(), **_convert(schema)})
    return [
        f"{template}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
        for e in validator.iter_errors(decode_form(body))
    ]


def query_problems(path: str, query: str) -> list[str]:
    """Validate GET query parameters against the operation's declared parameters."""
    template = _path_template(path)
    params = {
        p["name"]: p for p in spec()["paths"][template]["get"].get("parameters", []) if p["in"] == "query"
    }
    problems: list[str] = []
    for name, value in decode_form(query).items():
        if name not in params:
            problems.append(f"{template}: unknown query parameter {name}")
            continue
        validator = _FormValidator({"components": _components(), **_convert(params[name]["schema"])})
        problems += [f"{template}: {name}: {e.message[:200]}" for e in validator.iter_errors(value)]
    return problems


def _path_template(path: str) -> str:
    for template in spec()["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"no spec path for {path}")
