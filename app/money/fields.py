"""Validating accessors for the fields of Stripe's objects that an effect reads.

A signed event can still carry a field of the wrong type or out of range (a bug on either
side, a hand-made test event): ``amount`` null or a string, ``refunds.data`` an integer, an
id a list, a number beyond 64 bits. Effects read every field they use through these
accessors, before they write anything, so such an event raises :class:`BadEventData` (caught
by ``app.money.reversals.apply_effect``: stored as ``failed: <error>``, answered 2xx, shown
to the operator) instead of a ``TypeError`` that would roll back and be answered 5xx — which
Stripe retries for three days, for nothing. Integers are bounded to a BIGINT column, because
SQLite and PostgreSQL both refuse a bound value beyond 64 bits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = (
    "AMOUNT_MAX",
    "BIGINT_MAX",
    "ID_MAX_LENGTH",
    "BadEventData",
    "int_field",
    "list_field",
    "optional_id",
    "required_id",
    "text_field",
)

BIGINT_MAX = 2**63 - 1
"""The largest value a BIGINT column holds."""

AMOUNT_MAX = 10**12
"""Stripe caps an amount at 8 digits; 12 leaves room, and SQL sums of many stay within 64 bits
(SQLite's SUM raises on overflow)."""

ID_MAX_LENGTH = 200
"""Stripe's ids are a few dozen characters; 200 keeps ``refund:<id>:total:<n>`` within 255."""


class BadEventData(ValueError):
    """An event's field an effect needs is of the wrong type or out of range: never retryable."""


def _name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def int_field(
    obj: Mapping[str, Any],
    key: str,
    *,
    minimum: int = 0,
    maximum: int = BIGINT_MAX,
    default: int | None = None,
) -> int:
    """``obj[key]`` as an int within [minimum, maximum]; ``default`` when absent or null, if given."""
    value = obj.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadEventData(f"{key} must be an integer, got {_name(value)}")
    if not minimum <= value <= maximum:
        raise BadEventData(f"{key} out of range [{minimum}, {maximum}]")
    return value


def optional_id(value: Any, key: str = "id") -> str | None:
    """A Stripe id from a field that may be a string or an expanded object; None when absent.

    A string that cannot be one of Stripe's ids (too long, not printable ASCII: PostgreSQL
    refuses NUL) raises rather than reaching a VARCHAR(255) column or an idempotency key.
    """
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadEventData(f"{key} must be an id, got {_name(value)}")
    if len(value) > ID_MAX_LENGTH or not (value.isascii() and value.isprintable()):
        raise BadEventData(f"{key} is not a Stripe id")
    return value


def required_id(obj: Mapping[str, Any], key: str = "id") -> str:
    """``obj[key]`` as a Stripe id, which the effect cannot do without."""
    value = optional_id(obj.get(key), key)
    if value is None:
        raise BadEventData(f"{key} missing")
    return value


def list_field(obj: Mapping[str, Any], key: str) -> Sequence[Any]:
    """``obj[key]`` as a list (empty when absent or null)."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadEventData(f"{key} must be a list, got {_name(value)}")
    return value


def text_field(obj: Mapping[str, Any], key: str, *, limit: int = 100) -> str | None:
    """A short free-text field (a status, a reason) safe to store: None when not a string.

    Only used to describe or compare, so a wrong type is not an error; NUL (refused by
    PostgreSQL) and unpaired surrogates (not UTF-8) are replaced.
    """
    value = obj.get(key)
    if not isinstance(value, str):
        return None
    text = value[:limit]
    if text.isascii() and text.isprintable():
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
