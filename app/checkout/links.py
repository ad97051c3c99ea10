"""The token on the cancel link Stripe sends the buyer back with.

Order ids are sequential, so ``/checkout/cancel?order=N`` alone would let a link on any site
cancel a signed-in buyer's open order. Only the shop can make the token (an HMAC of the order
id under the secret key), so nothing is stored and no migration is needed; without it the
cancel page changes nothing and asks for a CSRF-protected POST instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def cancel_token(secret_key: str, order_id: int) -> str:
    """144 bits, URL-safe; the purpose prefix keeps it from ever matching another HMAC of ours."""
    digest = hmac.new(secret_key.encode(), f"checkout-cancel:{order_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def cancel_token_ok(secret_key: str, order_id: int, token: str) -> bool:
    # compare_digest raises on non-ASCII text: such a token is simply wrong.
    return token.isascii() and hmac.compare_digest(cancel_token(secret_key, order_id), token)
