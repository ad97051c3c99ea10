"""``POST /api/v1/keys/verify`` over HTTP: one 200 shape for every key, 422 for bad input, a server key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.config import make_engine
from app.settings import Settings
from app.web.factory import create_app
from tests.buyer_keys.support import (
    Sessions,
    host_events,
    key_views,
    make_buyer,
    make_key,
    make_server_key,
    spendable,
)
from tests.support.aio import run_async

PATH = "/api/v1/keys/verify"


class World:
    """The app under test and a way to run setup and checks on its database."""

    def __init__(self, settings: Settings, client: TestClient[Any]) -> None:
        self.settings = settings
        self.client = client

    def run(self, make: Any, *args: Any, **kwargs: Any) -> Any:
        async def go() -> Any:
            engine = make_engine(self.settings)
            try:
                sessions: Sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
                return await make(sessions, *args, **kwargs)
            finally:
                await engine.dispose()

        return run_async(go())


@pytest.fixture
def world(app_settings: Settings) -> Iterator[World]:
    with TestClient(create_app(app_settings), base_url="http://testserver.local") as client:
        yield World(app_settings, client)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_valid_key_is_charged_and_answered(world: World) -> None:
    token = world.run(make_server_key)
    user = world.run(make_buyer, 20)
    made = world.run(make_key, user.id, cap_units=15, cap_period="month")
    answer = world.client.post(PATH, json={"key": made.secret, "cost": 5}, headers=auth(token))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["valid"] is True
    assert body["code"] is None
    assert (body["user_id"], body["external_id"], body["asset"]) == (user.id, user.external_id, "quota")
    assert (body["charged"], body["remaining"], body["cap_remaining"], body["cap_period"]) == (
        5,
        15,
        10,
        "month",
    )
    default = world.client.post(PATH, json={"key": made.secret}, headers=auth(token)).json()
    assert (default["charged"], default["remaining"]) == (1, 14)
    assert world.run(spendable, user.id) == 14


def test_the_catalogues_low_balance_is_reported(world: World) -> None:
    """pricing.toml's quota asset has ``low_balance = 100``: a call from 101 to 99 reports it."""
    token = world.run(make_server_key)
    user = world.run(make_buyer, 101)
    made = world.run(make_key, user.id)
    assert world.client.post(PATH, json={"key": made.secret, "cost": 2}, headers=auth(token)).json()["valid"]
    assert world.run(host_events, user.id).count("balance.low") == 1


def test_invalid_keys_get_the_same_shape_with_a_code(world: World) -> None:
    token = world.run(make_server_key)
    user = world.run(make_buyer, 1)
    made = world.run(make_key, user.id)
    unknown = world.client.post(PATH, json={"key": "sk_quota_nope", "cost": 1}, headers=auth(token))
    assert unknown.status_code == 200
    assert unknown.json()["valid"] is False
    assert unknown.json()["code"] == "key_invalid"
    assert unknown.json()["user_id"] is None
    assert set(unknown.json()) == set(
        world.client.post(PATH, json={"key": made.secret, "cost": 1}, headers=auth(token)).json()
    )
    broke = world.client.post(PATH, json={"key": made.secret, "cost": 1}, headers=auth(token)).json()
    assert (broke["valid"], broke["code"], broke["remaining"]) == (False, "insufficient_balance", 0)
    huge = world.client.post(PATH, json={"key": made.secret, "cost": 2**53}, headers=auth(token))
    assert huge.status_code == 200
    assert huge.json()["code"] == "insufficient_balance"


@pytest.mark.parametrize(
    "body",
    [
        b'{"key": "KEY", "cost": 1, "extra": true}',
        b'{"key": "KEY", "cost": -1}',
        b'{"key": "KEY", "cost": 1.5}',
        b'{"key": "KEY", "cost": 1.0}',
        b'{"key": "KEY", "cost": 1e300}',
        b'{"key": "KEY", "cost": 9007199254740993}',
        b'{"key": "KEY", "cost": 123456789012345678901234567890}',
        b'{"key": "KEY", "cost": "1"}',
        b'{"key": "KEY", "cost": true}',
        b'{"key": "KEY", "cost": null}',
        b'{"cost": 1}',
        b'{"key": "", "cost": 1}',
        b'{"key": 5, "cost": 1}',
        b'["KEY", 1]',
        b'"KEY"',
    ],
)
def test_bad_input_is_422_and_charges_nothing(world: World, body: bytes) -> None:
    token = world.run(make_server_key)
    user = world.run(make_buyer, 10)
    made = world.run(make_key, user.id)
    answer = world.client.post(
        PATH,
        content=body.replace(b"KEY", made.secret.encode()),
        headers={**auth(token), "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert (problem["status"], problem["code"]) == (422, "invalid_request")
    assert problem["title"]
    assert world.run(spendable, user.id) == 10
    assert world.run(key_views, user.id)[0].calls == 0


@pytest.mark.parametrize("body", [b"key=KEY&cost=1", b"", b'{"key": "KEY", "cost": 1', b"\xff"])
def test_a_body_that_is_not_json_is_400_and_charges_nothing(world: World, body: bytes) -> None:
    token = world.run(make_server_key)
    user = world.run(make_buyer, 10)
    made = world.run(make_key, user.id)
    answer = world.client.post(
        PATH,
        content=body.replace(b"KEY", made.secret.encode()),
        headers={**auth(token), "content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "malformed_json"
    assert world.run(spendable, user.id) == 10


def test_the_problem_names_the_field_at_fault(world: World) -> None:
    token = world.run(make_server_key)
    cost = world.client.post(PATH, json={"key": "sk_x", "cost": -5}, headers=auth(token)).json()
    assert cost["param"] == "cost"
    extra = world.client.post(PATH, json={"key": "sk_x", "units": 5}, headers=auth(token)).json()
    assert extra["param"] == "units"


def test_a_spend_server_key_is_required(world: World) -> None:
    user = world.run(make_buyer, 10)
    made = world.run(make_key, user.id)
    read_only = world.run(make_server_key, "read")
    revoked = world.run(make_server_key, "spend", revoked=True)
    body = {"key": made.secret, "cost": 1}
    assert world.client.post(PATH, json=body).status_code == 401
    assert world.client.post(PATH, json=body, headers=auth("sf_test_made_up")).status_code == 401
    assert world.client.post(PATH, json=body, headers=auth(made.secret)).status_code == 401
    assert world.client.post(PATH, json=body, headers=auth(revoked)).status_code == 401
    assert world.client.post(PATH, json=body, headers=auth(read_only)).status_code == 403
    both = world.run(make_server_key, "read, spend")
    assert world.client.post(PATH, json=body, headers=auth(both)).json()["valid"] is True
    assert world.run(spendable, user.id) == 9
