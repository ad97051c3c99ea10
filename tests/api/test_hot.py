"""The host API's hot paths (app/api/hot.py): the plain shape of a balance read, a debit and a key
check is answered ahead of the middleware stack; every other shape gets the route's own answer.

The rest of tests/api sends its calls through the hot paths too, so the answers they check are
the hot paths' wherever the shape is plain.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from app.settings import Settings
from tests.api.support import api_client, assert_problem, make_key

C = "/api/v1/customers"


def _hot(route: str, status: int) -> float:
    return (
        REGISTRY.get_sample_value(
            "storefront_api_hot_answered_total", {"route": route, "status": str(status)}
        )
        or 0.0
    )


def _customer(client: TestClient[Any], external_id: str, grant: int) -> None:
    assert client.put(f"{C}/{external_id}", json={"email": f"{external_id}@example.com"}).status_code == 201
    made = client.post(f"{C}/{external_id}/grants", json={"asset": "coins", "units": grant, "reason": "hi"})
    assert made.status_code == 201, made.text


def test_plain_calls_are_answered_by_the_hot_paths(client: TestClient[Any]) -> None:
    _customer(client, "h1", 10)
    reads, debits = _hot("balances", 200), _hot("debits", 201)
    balance = client.get(f"{C}/h1")
    assert balance.status_code == 200
    assert balance.headers["content-type"] == "application/json"
    assert balance.headers["x-content-type-options"] == "nosniff"  # security headers all the same
    assert balance.json()["balances"]["coins"]["available"] == 10
    first = client.post(
        f"{C}/h1/debits", json={"asset": "coins", "units": 3}, headers={"Idempotency-Key": "d-1"}
    )
    assert first.status_code == 201, first.text
    again = client.post(
        f"{C}/h1/debits", json={"asset": "coins", "units": 3}, headers={"Idempotency-Key": "d-1"}
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = client.post(
        f"{C}/h1/debits", json={"asset": "coins", "units": 4}, headers={"Idempotency-Key": "d-1"}
    )
    assert_problem(other, 409, "idempotency_key_reused", "Idempotency-Key")
    short = client.post(f"{C}/h1/debits", json={"asset": "coins", "units": 8})
    assert_problem(short, 402, "insufficient_balance")
    assert short.json()["spendable"] == 7
    assert client.get(f"{C}/h1").json()["balances"]["coins"]["available"] == 7
    assert _hot("balances", 200) == reads + 2
    assert _hot("debits", 201) == debits + 2


def test_the_key_is_admitted_as_the_guard_admits_it(client: TestClient[Any], api_settings: Settings) -> None:
    _customer(client, "h2", 5)
    missing = client.get(f"{C}/h2", headers={"Authorization": ""})
    assert_problem(missing, 401, "missing_api_key")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert_problem(
        client.get(f"{C}/h2", headers={"Authorization": "Bearer sf_test_nope"}), 401, "invalid_api_key"
    )
    reader = make_key(api_settings, scopes=("read",))
    refused = client.post(
        f"{C}/h2/debits", json={"asset": "coins", "units": 1}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert_problem(refused, 403, "insufficient_scope")
    assert_problem(client.get(f"{C}/nobody"), 404, "customer_not_found", "external_id")


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        ({"method": "GET", "url": f"{C}/h3?expand=1"}, 422, "unknown_parameter"),
        (
            {
                "method": "POST",
                "url": f"{C}/h3/debits",
                "content": b"{not json",
                "headers": {"content-type": "application/json"},
            },
            400,
            "malformed_json",
        ),
        (
            {
                "method": "POST",
                "url": f"{C}/h3/debits",
                "content": b"",
                "headers": {"content-type": "application/json"},
            },
            400,
            "malformed_json",
        ),
        (
            {"method": "POST", "url": f"{C}/h3/debits", "json": {"asset": "coins", "units": "1"}},
            422,
            "invalid_request",
        ),
        (
            {"method": "POST", "url": f"{C}/h3/debits", "json": {"asset": "coins", "units": 1, "x": 1}},
            422,
            "invalid_request",
        ),
        (
            {
                "method": "POST",
                "url": f"{C}/h3/debits",
                "content": b'{"asset":"coins","units":1}',
                "headers": {"content-type": "text/plain"},
            },
            415,
            "unsupported_media_type",
        ),
        (
            {
                "method": "POST",
                "url": f"{C}/h3/debits",
                "json": {"asset": "coins", "units": 1},
                "headers": {"Idempotency-Key": "has space"},
            },
            422,
            "invalid_request",
        ),
        (
            {"method": "POST", "url": f"{C}/a%2Fb/debits", "json": {"asset": "coins", "units": 1}},
            404,
            "not_found",
        ),
        (
            {"method": "POST", "url": "/api/v1/keys/verify", "json": {"key": "k", "cost": -1}},
            422,
            "invalid_request",
        ),
    ],
)
def test_other_shapes_get_the_routes_answers_and_change_nothing(
    client: TestClient[Any], call: dict[str, Any], status: int, code: str
) -> None:
    _customer(client, "h3", 5)
    answer = client.request(**call)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert client.get(f"{C}/h3").json()["balances"]["coins"]["available"] == 5


def test_a_key_check_is_answered_by_its_hot_path(client: TestClient[Any]) -> None:
    checks = _hot("verify", 200)
    answer = client.post("/api/v1/keys/verify", json={"key": "sk_buyer_unknown", "cost": 1})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    verdict = msgspec.json.decode(answer.content)
    assert verdict["valid"] is False
    assert _hot("verify", 200) == checks + 1


def test_a_call_the_hot_path_hands_on_is_counted_once(api_settings: Settings) -> None:
    """The route's guard counts what the hot path declines: the hot path must not count it first."""
    settings = replace(api_settings, api_rate_per_minute=3)
    key = make_key(settings)
    with api_client(settings) as client:
        client.headers.update({"Authorization": f"Bearer {key}"})
        for _ in range(2):  # declined (not JSON): answered by the route, one call each
            bad = client.post(
                f"{C}/nobody/debits", content=b"{", headers={"content-type": "application/json"}
            )
            assert_problem(bad, 400, "malformed_json")
        assert_problem(client.get(f"{C}/nobody"), 404, "customer_not_found", "external_id")  # the third
        assert_problem(client.get(f"{C}/nobody"), 429, "rate_limited")
