"""``PUT``/``GET /api/v1/customers/{external_id}`` and the customer list, on both databases."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from litestar.testing import TestClient
from sqlalchemy import text

from app.api.customers import find_customer_id
from app.db.config import make_engine
from app.db.writer import PostgresWriter, SqliteWriter
from app.money.credits import credit
from app.money.models import LotKind
from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import client_for, sign_in, sign_up
from tests.api.support import assert_problem, bearer, make_key, rows
from tests.support.servers import serve_in_thread

C = "/api/v1/customers"


def test_put_creates_then_the_same_put_gives_the_same_customer(
    client: TestClient[Any], api_settings: Settings
) -> None:
    body = {"email": " Ann@Example.com ", "name": "Ann", "metadata": {"plan": "pro", "team": "7"}}
    created = client.put(C + "/user_42", json=body)
    assert created.status_code == 201, created.text
    again = client.put(C + "/user_42", json=body)
    assert again.status_code == 200
    assert again.json() == created.json()
    out = created.json()
    assert out["external_id"] == "user_42"
    assert out["email"] == "ann@example.com"
    assert out["name"] == "Ann"
    assert out["metadata"] == {"plan": "pro", "team": "7"}
    assert out["balances"] == {}
    assert isinstance(out["created_at"], int)
    assert client.get(C + "/user_42").json() == out
    assert len(rows(api_settings, "SELECT id FROM user_account")) == 1


def test_put_updates_only_what_it_names(client: TestClient[Any]) -> None:
    client.put(C + "/u1", json={"email": "u1@example.com", "name": "One", "metadata": {"a": "1"}})
    renamed = client.put(C + "/u1", json={"name": "Uno"}).json()
    assert (renamed["email"], renamed["name"], renamed["metadata"]) == ("u1@example.com", "Uno", {"a": "1"})
    cleared = client.put(C + "/u1", json={"name": "", "metadata": {}}).json()
    assert (cleared["name"], cleared["metadata"]) == (None, {})
    moved = client.put(C + "/u1", json={"email": "new@example.com", "name": None}).json()
    assert (moved["email"], moved["name"]) == ("new@example.com", None)


def test_an_email_account_is_linked_by_its_email(api_settings: Settings, key: str) -> None:
    with client_for(api_settings) as browser:
        assert sign_up(browser, "buyer@example.com").status_code == 303
    with client_for(api_settings) as api:
        linked = api.put(C + "/host-9", json={"email": "Buyer@example.com", "name": "B"}, headers=bearer(key))
        assert linked.status_code == 201, linked.text
        assert linked.json()["email"] == "buyer@example.com"
    [row] = rows(api_settings, "SELECT external_id, name FROM user_account")
    assert row == {"external_id": "host-9", "name": "B"}
    with client_for(api_settings) as browser:  # the buyer's password still works
        assert sign_in(browser, "buyer@example.com").status_code == 303


def test_an_email_of_another_customer_is_409(client: TestClient[Any], api_settings: Settings) -> None:
    client.put(C + "/first", json={"email": "taken@example.com"})
    client.put(C + "/second", json={"email": "free@example.com"})
    assert_problem(client.put(C + "/third", json={"email": "taken@example.com"}), 409, "email_taken", "email")
    assert_problem(
        client.put(C + "/second", json={"email": "TAKEN@example.com"}), 409, "email_taken", "email"
    )
    assert client.get(C + "/second").json()["email"] == "free@example.com"
    assert_problem(client.get(C + "/third"), 404, "customer_not_found")
    assert len(rows(api_settings, "SELECT id FROM user_account")) == 2


def test_created_customers_have_no_usable_password(client: TestClient[Any], api_settings: Settings) -> None:
    client.put(C + "/p", json={"email": "nopass@example.com"})
    [row] = rows(api_settings, "SELECT password_hash FROM user_account")
    assert row["password_hash"].startswith("!")
    with client_for(api_settings) as browser:
        for password in ("", "!", row["password_hash"], row["password_hash"][1:], "correct horse battery"):
            assert sign_in(browser, "nopass@example.com", password=password).status_code in (400, 401)


def test_unknown_customer_is_404(client: TestClient[Any]) -> None:
    assert_problem(client.get(C + "/nobody"), 404, "customer_not_found", "external_id")


def test_the_safe_set_of_external_ids(client: TestClient[Any]) -> None:
    for n, external_id in enumerate(["a", "auth0|123", "x.y_z~1:2@3+4=5-6", "9" * 255]):
        response = client.put(f"{C}/{external_id}", json={"email": f"s{n}@example.com"})
        assert response.status_code == 201, (external_id, response.text)
        assert response.json()["external_id"] == external_id


def test_the_list_pages_with_a_cursor(client: TestClient[Any], api_settings: Settings) -> None:
    with client_for(api_settings) as browser:
        sign_up(browser, "not-a-customer@example.com")  # no external id: not listed
    for n in range(5):
        client.put(f"{C}/c{n}", json={"email": f"c{n}@example.com"})
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(C, params=params).json()
        pages += 1
        seen += [c["external_id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"c{n}" for n in range(5)]
    assert pages == 3
    assert client.get(C, params={"limit": 100}).json()["next_cursor"] is None


def test_concurrent_puts_of_one_customer_make_one(api_settings: Settings) -> None:
    key = make_key(api_settings)

    async def race(base: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base, headers=bearer(key), timeout=60) as http:
            answers = await asyncio.gather(
                *(
                    http.put(C + "/racer", json={"email": "racer@example.com", "name": f"n{n}"})
                    for n in range(8)
                )
            )
        return [a.status_code for a in answers]

    with serve_in_thread(create_app(api_settings)) as base:
        statuses = asyncio.run(race(base))
    assert sorted(statuses) == [200] * 7 + [201], statuses
    [row] = rows(api_settings, "SELECT external_id, email FROM user_account")
    assert row == {"external_id": "racer", "email": "racer@example.com"}


def _credit(
    settings: Settings, external_id: str, asset: str, units: int, expires_at: int | None = None
) -> None:
    async def go() -> None:
        engine = make_engine(settings)
        try:
            async with engine.begin() as conn:
                [user_id] = (
                    await conn.execute(
                        text("SELECT id FROM user_account WHERE external_id = :x"), {"x": external_id}
                    )
                ).one()

                def op(sync: Any) -> None:
                    credit(
                        sync,
                        user_id=user_id,
                        asset=asset,
                        units=units,
                        kind="grant",
                        lot_kind=LotKind.PROMOTIONAL,
                        key=f"test:{asset}:{units}:{expires_at}",
                        reason="test",
                        expires_at=expires_at,
                    )

                await conn.run_sync(op)
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_get_shows_the_balances_per_asset(client: TestClient[Any], api_settings: Settings) -> None:
    client.put(C + "/rich", json={"email": "rich@example.com"})
    soon = int(time.time()) + 3600
    _credit(api_settings, "rich", "coins", 100)
    _credit(api_settings, "rich", "coins", 30, expires_at=soon)
    _credit(api_settings, "rich", "api-calls", 5000)
    balances = client.get(C + "/rich").json()["balances"]
    assert list(balances) == ["api-calls", "coins"]
    assert balances["coins"] == {
        "available": 130,
        "reserved": 0,
        "held": 0,
        "pending": 0,
        "debt": 0,
        "next_expiry_units": 30,
        "next_expiry_at": soon,
    }
    assert balances["api-calls"]["available"] == 5000
    assert client.put(C + "/rich", json={"name": "R"}).json()["balances"] == balances


def test_find_customer_id_runs_in_the_money_writer(client: TestClient[Any], api_settings: Settings) -> None:
    client.put(C + "/w1", json={"email": "w1@example.com"})
    [row] = rows(api_settings, "SELECT id FROM user_account WHERE external_id = 'w1'")

    async def go() -> tuple[int | None, int | None]:
        writer: Any
        engine = make_engine(api_settings)
        writer = SqliteWriter(api_settings.database_url) if api_settings.is_sqlite else PostgresWriter(engine)
        try:
            found = await writer.call(lambda conn: find_customer_id(conn, "w1"))
            missing = await writer.call(lambda conn: find_customer_id(conn, "nobody"))
            return found, missing
        finally:
            await writer.close()
            await engine.dispose()

    assert asyncio.run(go()) == (row["id"], None)
