"""``verify_signature``: what hosts run on every webhook; standard library only, so it can be copied."""

from __future__ import annotations

import ast
import json
import sys
import time

import pytest

from app.host_webhooks import signature
from app.host_webhooks.signature import SignatureVerificationError, sign, verify_signature

SECRET = "whsec_test_secret_for_hosts"
BODY = json.dumps({"id": "evt_1", "type": "balance.low", "created": 1, "data": {"available": 3}}).encode()


def test_a_fresh_signature_of_the_body_verifies_and_gives_the_event() -> None:
    assert verify_signature(BODY, sign(BODY, SECRET), SECRET) == json.loads(BODY)


def test_the_header_is_stripes_scheme() -> None:
    import hashlib
    import hmac

    header = sign(BODY, SECRET, timestamp=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_stale_or_future_signature_is_refused(age: int) -> None:
    header = sign(BODY, SECRET, timestamp=int(time.time()) - age)
    with pytest.raises(SignatureVerificationError, match="tolerance 300 s"):
        verify_signature(BODY, header, SECRET)


def test_the_tolerance_can_be_widened_and_now_given() -> None:
    header = sign(BODY, SECRET, timestamp=1000)
    assert verify_signature(BODY, header, SECRET, 600, now=1500)["id"] == "evt_1"
    with pytest.raises(SignatureVerificationError):
        verify_signature(BODY, header, SECRET, 300, now=1500)


def test_another_secret_or_a_changed_body_is_refused() -> None:
    header = sign(BODY, SECRET)
    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify_signature(BODY, header, "whsec_someone_else")
    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify_signature(BODY.replace(b"3", b"9"), header, SECRET)
    forged = header.split(",v1=")[0] + ",v1=" + "0" * 64
    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify_signature(BODY, forged, SECRET)


def test_a_new_timestamp_on_an_old_signature_is_refused() -> None:
    old = sign(BODY, SECRET, timestamp=int(time.time()) - 3600)
    replayed = f"t={int(time.time())}," + old.split(",", 1)[1]
    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify_signature(BODY, replayed, SECRET)


def test_any_of_several_v1_values_may_match_during_a_rotation() -> None:
    header = sign(BODY, ["whsec_old_secret", SECRET])
    assert header.count("v1=") == 2
    assert verify_signature(BODY, header, SECRET)["type"] == "balance.low"
    assert verify_signature(BODY, header, "whsec_old_secret")["type"] == "balance.low"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "no Storefront-Signature"),
        ("v1=abc", "needs t=... and at least one v1"),
        ("t=123", "needs t=... and at least one v1"),
        ("t=soon,v1=abc", "bad timestamp"),
        ("garbage", "needs t="),
        ("t=1," + "v1=a," * 2000, "too long"),
    ],
)
def test_a_malformed_header_is_refused_clearly(header: str, message: str) -> None:
    with pytest.raises(SignatureVerificationError, match=message):
        verify_signature(BODY, header, SECRET)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_a_signed_body_that_is_not_an_event_is_refused(body: bytes) -> None:
    with pytest.raises(SignatureVerificationError, match=r"not a JSON object|not JSON"):
        verify_signature(body, sign(body, SECRET), SECRET)


def test_the_module_imports_only_the_standard_library() -> None:
    """Hosts copy the file: nothing of the shop, nothing installed."""
    assert signature.__file__ is not None
    tree = ast.parse(open(signature.__file__, encoding="utf-8").read())  # noqa: SIM115
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    assert "standard library only" in (signature.__doc__ or "").lower()
