"""Stripe's Search Query Language, the subset the sandbox parses: anything else is refused.

Supported: clauses `field:value` (exact, case-insensitive), `field~"sub"` (substring, at least
three characters), `field>n` / `>=` / `<` / `<=` on numeric fields, `metadata["key"]:"value"`,
`field:null`, a leading `-` to negate, and up to ten clauses joined by all `AND` or all `OR`
(Stripe refuses mixing them). Values are "double" or 'single' quoted strings, or bare numbers.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import StripeError, invalid
from .objects import Obj
from .store import Collection

SYNTAX_URL = "https://stripe.com/docs/search#search-query-language"
MAX_CLAUSES = 10

# Field kinds: "string", "number", "boolean" or "metadata".
SEARCH_FIELDS: dict[str, dict[str, str]] = {
    "customers": {"created": "number", "email": "string", "metadata": "metadata", "name": "string",
                  "phone": "string"},
    "products": {"active": "boolean", "created": "number", "description": "string",
                 "metadata": "metadata", "name": "string", "shippable": "boolean", "url": "string"},
    "prices": {"active": "boolean", "currency": "string", "lookup_key": "string",
               "metadata": "metadata", "product": "string", "type": "string"},
    "payment_intents": {"amount": "number", "created": "number", "currency": "string",
                        "customer": "string", "metadata": "metadata", "status": "string"},
    "charges": {"amount": "number", "created": "number", "currency": "string", "customer": "string",
                "disputed": "boolean", "metadata": "metadata", "payment_intent": "string",
                "refunded": "boolean", "status": "string"},
}  # fmt: skip

_CLAUSE = re.compile(
    r"""(?P<neg>-)?(?P<field>[a-z_]+)(?:\[(?P<mq>["'])(?P<key>[^"'\]]{1,40})(?P=mq)\])?"""
    r"""(?P<op>>=|<=|:|~|>|<)"""
    r"""(?:(?P<q>["'])(?P<text>(?:\\.|(?!(?P=q)).)*)(?P=q)|(?P<bare>-?\d+(?:\.\d+)?|null))"""
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")


@dataclass(frozen=True)
class Clause:
    negate: bool
    field: str
    key: str | None
    op: str
    value: str | float | None  # None is `null`


def query_error(message: str) -> StripeError:
    return invalid(f"{message} See {SYNTAX_URL} for the query syntax the API accepts.", param="query")


def parse_query(query: str, resource: str) -> tuple[list[Clause], str]:
    """The clauses and their joiner ("AND" or "OR"); raises Stripe's 400 naming `query`."""
    fields = SEARCH_FIELDS[resource]
    text = query.strip()
    if not text:
        raise query_error("The search query is empty.")
    clauses: list[Clause] = []
    joiners: set[str] = set()
    pos = 0
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise query_error(
                f"We could not parse your search query at character {pos + 1}: {text[pos : pos + 30]!r}."
            )
        clauses.append(_clause(match, fields, resource))
        pos = match.end()
        if pos == len(text):
            break
        join = _JOIN.match(text, pos)
        if join is None:
            raise query_error(
                f"We could not parse your search query at character {pos + 1}: {text[pos : pos + 30]!r}. "
                "Join clauses with ` AND ` or ` OR `."
            )
        joiners.add(join.group(1))
        pos = join.end()
    if len(joiners) > 1:
        raise query_error("A search query cannot mix `AND` and `OR`.")
    if len(clauses) > MAX_CLAUSES:
        raise query_error(f"A search query can have at most {MAX_CLAUSES} clauses.")
    return clauses, joiners.pop() if joiners else "AND"


def _clause(match: re.Match[str], fields: Mapping[str, str], resource: str) -> Clause:
    field, key, op = match.group("field"), match.group("key"), match.group("op")
    kind = fields.get(field)
    if kind is None:
        raise invalid(
            f"Field `{field}` is an unsupported search field for resource `{resource}`. See "
            f"http://stripe.com/docs/search#query-fields-for-{resource.replace('_', '-')} for a list of "
            "supported fields.",
            param="query",
        )
    if (kind == "metadata") != (key is not None):
        raise query_error('Query metadata as `metadata["key"]:"value"`.')
    quoted = match.group("q") is not None
    bare = match.group("bare")
    value: str | float | None
    if quoted:
        value = re.sub(r"\\(.)", r"\1", match.group("text"))
    elif bare == "null":
        value = None
    else:
        value = float(bare)
    if op in ("<", ">", "<=", ">="):
        if kind != "number" or not isinstance(value, float):
            raise query_error(f"The `{op}` operator needs a numeric field and a number; `{field}` is {kind}.")
    elif op == "~":
        if kind == "number" or kind == "boolean" or not isinstance(value, str) or len(value) < 3:
            raise query_error("The `~` (substring) operator needs a text field and at least 3 characters.")
    elif kind == "number" and isinstance(value, str):
        raise query_error(f"`{field}` is numeric: compare it with an unquoted number.")
    elif kind == "boolean" and value not in ("true", "false", None):
        raise query_error(f"`{field}` is a boolean: use '{field}:\"true\"' or '{field}:\"false\"'.")
    return Clause(bool(match.group("neg")), field, key, op, value)


def _holds(clause: Clause, obj: Obj) -> bool:
    actual: Any = obj.get(clause.field)
    if clause.key is not None:
        actual = (actual or {}).get(clause.key)
    value = clause.value
    if value is None:
        return actual is None
    if actual is None:
        return False
    if clause.op == ":":
        if isinstance(value, float):
            return isinstance(actual, int | float) and actual == value
        if isinstance(actual, bool):
            return str(actual).lower() == value
        return str(actual).lower() == value.lower()
    if clause.op == "~":
        return str(value).lower() in str(actual).lower()
    assert isinstance(value, float)
    compare: dict[str, Callable[[float, float], bool]] = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    return compare[clause.op](float(actual), value)


def matcher(query: str, resource: str) -> Callable[[Obj], bool]:
    clauses, joiner = parse_query(query, resource)
    combine = all if joiner == "AND" else any

    def match(obj: Obj) -> bool:
        return combine(_holds(c, obj) != c.negate for c in clauses)

    return match


def _page_token(last_id: str) -> str:
    """An opaque `next_page`: the last object shown, so a page resumes after it (a cursor, as
    Stripe's are: objects made between two pages neither repeat nor push results along)."""
    return base64.urlsafe_b64encode(f"sandbox:{last_id}".encode()).decode().rstrip("=")


def _page_after(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    prefix, _, last_id = text.partition(":")
    if prefix != "sandbox" or not last_id:
        raise invalid(f"Invalid page: {token[:40]}", param="page")
    return last_id


def search(coll: Collection, resource: str, params: Obj, url: str) -> Obj:
    """A `search_result` page, newest first; `next_page` is an opaque token for the following page."""
    match = matcher(params["query"], resource)
    limit: int = params.get("limit", 10)
    # Deleted objects (Stripe's stubs) are no longer found.
    newest_first = [o for o in reversed(coll.dump()) if not o.get("deleted")]
    if "page" in params:
        ids = [o["id"] for o in newest_first]
        last_id = _page_after(params["page"])
        if last_id not in ids:
            raise invalid(f"Invalid page: {params['page'][:40]}", param="page")
        newest_first = newest_first[ids.index(last_id) + 1 :]
    found = [o for o in newest_first if match(o)]
    page = found[:limit]
    more = len(found) > limit
    return {
        "object": "search_result",
        "data": page,
        "has_more": more,
        "next_page": _page_token(page[-1]["id"]) if more else None,
        "url": url,
    }
