"""Debits, holds, grants and the lists over HTTP, on both databases (app/api/spending.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from tests.api.support import assert_problem, make_key, rows

C = "/api/v1/customers"


def _customer(client: TestClient[Any], external_id: str = "u1", grant: int = 0) -> str:
    assert client.put(f"{C}/{external_id}", json={"email": f"{external_id}@example.com"}).status_code == 201
    if grant:
        made = client.post(
            f"{C}/{external_id}/grants", json={"asset": "coins", "units": grant, "reason": "welcome"}
        )
        assert made.status_code == 201, made.text
    return external_id


def _balance(client: TestClient[Any], external_id: str) -> dict[str, Any]:
    balances: dict[str, Any] = client.get(f"{C}/{external_id}").json()["balances"]
    return balances.get("coins", {})


def test_debit_spends_and_an_overdraft_is_402_with_nothing_changed(client: TestClient[Any]) -> None:
    _customer(client, grant=10)
    spent = client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 4, "reason": "level 2"})
    assert spent.status_code == 201, spent.text
    body = spent.json()
    assert (body["units"], body["available"], body["customer"]) == (4, 6, "u1")
    assert [lot["units"] for lot in body["lots"]] == [4]
    refused = client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 7})
    assert_problem(refused, 402, "insufficient_balance")
    assert refused.json()["spendable"] == 6
    assert _balance(client, "u1")["available"] == 6
    kinds = [e["kind"] for e in client.get(f"{C}/u1/entries").json()["data"]]
    assert kinds == ["debit", "grant"]


def test_idempotency_key_replays_and_a_different_body_is_409(client: TestClient[Any]) -> None:
    _customer(client, grant=10)
    headers = {"Idempotency-Key": "order-77"}
    first = client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 3}, headers=headers)
    again = client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 3}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 4}, headers=headers)
    assert_problem(other, 409, "idempotency_key_reused")
    assert _balance(client, "u1")["available"] == 7


def test_replayed_debits_under_concurrency_spend_once(
    client: TestClient[Any], api_settings: Settings
) -> None:
    _customer(client, grant=100)
    headers = {"Idempotency-Key": "same-one"}

    def spend(_: int) -> Any:
        return client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 5}, headers=headers)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(spend, range(32)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert _balance(client, "u1")["available"] == 95
    assert len(rows(api_settings, "SELECT id FROM ledger_entry WHERE kind = 'debit'")) == 1


def test_concurrent_debits_never_overdraw(client: TestClient[Any]) -> None:
    _customer(client, grant=10)

    def spend(_: int) -> int:
        return client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 1}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(spend, range(100)))
    assert codes.count(201) == 10
    assert codes.count(402) == 90
    assert _balance(client, "u1")["available"] == 0


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"asset": "coins", "units": 0}, "invalid_request", "units"),
        ({"asset": "coins", "units": -1}, "invalid_request", "units"),
        ({"asset": "coins", "units": 1.5}, "invalid_request", "units"),
        ({"asset": "coins", "units": 1.0}, "invalid_request", "units"),
        ({"asset": "coins", "units": "5"}, "invalid_request", "units"),
        ({"asset": "coins", "units": 2**53 + 1}, "invalid_request", "units"),
        ({"asset": "coins", "units": 10**30}, "invalid_request", "units"),
        ({"asset": "coins", "units": 1, "surprise": 1}, "invalid_request", "surprise"),
        ({"units": 1}, "invalid_request", None),
    ],
)
def test_bad_debits_are_422_and_change_nothing(
    client: TestClient[Any], body: dict[str, Any], code: str, param: str | None
) -> None:
    _customer(client, grant=10)
    answer = client.post(f"{C}/u1/debits", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code
    if param is not None:
        assert answer.json().get("param") == param
    assert _balance(client, "u1")["available"] == 10


def test_unknown_customer_and_asset_are_404(client: TestClient[Any]) -> None:
    _customer(client, grant=10)
    assert_problem(
        client.post(f"{C}/nobody/debits", json={"asset": "coins", "units": 1}), 404, "customer_not_found"
    )
    assert_problem(client.post(f"{C}/u1/debits", json={"asset": "gems", "units": 1}), 404, "asset_not_found")
    assert_problem(client.post("/api/v1/holds/hold_nope/release"), 404, "hold_not_found")
    assert_problem(client.get(f"{C}/nobody/entries"), 404, "customer_not_found")


def test_hold_capture_part_then_everything_after_is_409(client: TestClient[Any]) -> None:
    _customer(client, grant=50)
    made = client.post(f"{C}/u1/holds", json={"asset": "coins", "units": 30, "expires_in": 600})
    assert made.status_code == 201, made.text
    hold = made.json()
    assert (hold["status"], hold["units"]) == ("open", 30)
    assert (_balance(client, "u1")["available"], _balance(client, "u1")["reserved"]) == (20, 30)
    too_much = client.post(f"/api/v1/holds/{hold['id']}/capture", json={"units": 31})
    assert_problem(too_much, 422, "capture_too_large")
    captured = client.post(f"/api/v1/holds/{hold['id']}/capture", json={"units": 12})
    assert captured.status_code == 200, captured.text
    assert (captured.json()["status"], captured.json()["captured"]) == ("captured", 12)
    assert (_balance(client, "u1")["available"], _balance(client, "u1")["reserved"]) == (38, 0)
    assert_problem(
        client.post(f"/api/v1/holds/{hold['id']}/capture", json={"units": 1}), 409, "hold_captured"
    )
    assert_problem(client.post(f"/api/v1/holds/{hold['id']}/release"), 409, "hold_captured")
    assert client.get(f"/api/v1/holds/{hold['id']}").json()["status"] == "captured"
    listed = client.get(f"{C}/u1/holds").json()["data"]
    assert [h["id"] for h in listed] == [hold["id"]]


def test_hold_release_gives_everything_back_and_limits_are_checked(client: TestClient[Any]) -> None:
    _customer(client, grant=50)
    hold = client.post(f"{C}/u1/holds", json={"asset": "coins", "units": 50}).json()
    assert_problem(
        client.post(f"{C}/u1/holds", json={"asset": "coins", "units": 1}), 402, "insufficient_balance"
    )
    assert client.post(f"/api/v1/holds/{hold['id']}/release").json()["status"] == "released"
    assert _balance(client, "u1")["available"] == 50
    long = client.post(f"{C}/u1/holds", json={"asset": "coins", "units": 1, "expires_in": 86_401})
    assert long.status_code == 422


def test_grants_need_their_scope_and_lots_are_listed(client: TestClient[Any], api_settings: Settings) -> None:
    _customer(client)
    spender = make_key(api_settings, ("read", "spend"))
    refused = client.post(
        f"{C}/u1/grants",
        json={"asset": "coins", "units": 5, "reason": "sorry"},
        headers={"Authorization": f"Bearer {spender}"},
    )
    assert_problem(refused, 403, "insufficient_scope")
    made = client.post(
        f"{C}/u1/grants", json={"asset": "coins", "units": 5, "reason": "sorry", "expires_in_days": 30}
    )
    assert made.status_code == 201, made.text
    assert made.json()["expires_at"] is not None
    lots = client.get(f"{C}/u1/lots").json()["data"]
    assert [(lot["kind"], lot["remaining"]) for lot in lots] == [("promotional", 5)]
    assert _balance(client, "u1")["next_expiry_units"] == 5
    assert_problem(client.post(f"{C}/u1/grants", json={"asset": "coins", "units": 5}), 422, "invalid_request")


def test_entries_are_paged_by_cursor(client: TestClient[Any]) -> None:
    _customer(client, grant=10)
    for _ in range(4):
        assert client.post(f"{C}/u1/debits", json={"asset": "coins", "units": 1}).status_code == 201
    first = client.get(f"{C}/u1/entries?limit=2").json()
    second = client.get(f"{C}/u1/entries?limit=2&cursor={first['next_cursor']}").json()
    third = client.get(f"{C}/u1/entries?limit=2&cursor={second['next_cursor']}").json()
    ids = [e["id"] for page in (first, second, third) for e in page["data"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 5
    assert third["next_cursor"] is None
    assert_problem(client.get(f"{C}/u1/entries?cursor=garbage!"), 422, "invalid_cursor")
