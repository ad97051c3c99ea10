"""Stripe-style object ids (`cs_test_...`, `pi_...`) with random base62 bodies."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def session_id() -> str:
    # Real test-mode Checkout Session ids are long: `cs_test_a1` + 56 chars.
    return new_id("cs_test_a1", 56)
