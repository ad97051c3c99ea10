"""Sign and verify ``Storefront-Signature``: what a host application checks on every webhook.

Standard library only, and nothing of the shop: a host may copy this one file into its own
code. The scheme is Stripe's: the header is ``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``,
each ``v1`` the HMAC-SHA256 of ``b"<t>." + raw body`` keyed with the endpoint's whole
``whsec_...`` secret. Several ``v1`` values may come at once (one per secret while a secret is
being rotated); one that matches is enough. The timestamp bounds replays: a signature older
(or newer) than ``tolerance`` seconds is refused.

    from signature import verify_signature, SignatureVerificationError
    try:
        event = verify_signature(request_body, request.headers["Storefront-Signature"], SECRET)
    except SignatureVerificationError as error:
        return 400, str(error)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

__all__ = ("HEADER", "TOLERANCE_SECONDS", "SignatureVerificationError", "sign", "verify_signature")

HEADER = "Storefront-Signature"
TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 4096


class SignatureVerificationError(ValueError):
    """The body was not signed by the shop with this secret, or not recently: do not act on it."""


def _mac(payload: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()


def sign(payload: bytes, secrets: str | Iterable[str], timestamp: int | None = None) -> str:
    """The header value for ``payload``: one ``v1`` per secret (the shop's side; tests use it too)."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return ",".join([f"t={t}", *(f"v1={_mac(payload, key, t)}" for key in keys)])


def verify_signature(
    payload: bytes, header: str, secret: str, tolerance: int = TOLERANCE_SECONDS, *, now: float | None = None
) -> dict[str, Any]:
    """Check ``header`` against the raw ``payload`` and return the event it carries.

    Raises :class:`SignatureVerificationError` when the header is missing or malformed, its
    timestamp is more than ``tolerance`` seconds away from now, no ``v1`` matches (compared
    in constant time), or the body is not a JSON object. Pass the body exactly as received:
    re-encoded JSON has other bytes and never verifies.
    """
    if not header:
        raise SignatureVerificationError(f"no {HEADER} header")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureVerificationError(f"{HEADER} header is too long")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureVerificationError(f"{HEADER} header has a bad timestamp") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureVerificationError(f"{HEADER} header needs t=... and at least one v1=...")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureVerificationError(
            f"signature timestamp is {int(current - timestamp)} s from now (tolerance {tolerance} s): "
            "a replay or a wrong clock"
        )
    expected = _mac(payload, secret, timestamp).encode()
    matched = False
    for candidate in candidates:  # every candidate is compared: no early exit to time
        matched |= hmac.compare_digest(expected, candidate.encode("ascii", "replace"))
    if not matched:
        raise SignatureVerificationError("no signature matches this secret and body")
    try:
        event = json.loads(payload)
    except ValueError:
        raise SignatureVerificationError("the signed body is not JSON") from None
    if not isinstance(event, dict):
        raise SignatureVerificationError("the signed body is not a JSON object")
    return event
