"""Buyer keys: make, list, revoke, and verify-and-charge (caps, expiry, balance), on both databases."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from sqlalchemy import select

from app.buyer_keys.models import BuyerKey
from app.buyer_keys.service import (
    MAX_COST,
    Code,
    CreatedKey,
    KeyInputError,
    KeyNotFound,
    create_key,
    list_keys,
    revoke_key,
    verify_and_charge,
)
from app.db.sql import run
from tests.buyer_keys.support import (
    ASSET,
    NOON,
    Sessions,
    at,
    host_events,
    make_buyer,
    spend_entries,
    spendable,
    usage_rows,
)

pytestmark = pytest.mark.anyio


async def new_key(sessions: Sessions, user_id: int, **options: object) -> CreatedKey:
    async with sessions() as db, db.begin():
        made: CreatedKey = await run(
            db, create_key, user_id=user_id, asset=ASSET, name="my app", now=NOON, **options
        )
    return made


async def verify(sessions: Sessions, key: str, cost: int = 1, now: int = NOON):  # type: ignore[no-untyped-def]
    async with sessions() as db, db.begin():
        return await run(db, verify_and_charge, key=key, cost=cost, now=now)


async def test_a_key_is_shown_once_and_stored_as_its_hash(sessions: Sessions) -> None:
    user = await make_buyer(sessions)
    made = await new_key(sessions, user.id)
    assert made.secret.startswith("sk_quota_")
    assert not made.secret.startswith(("sf_live_", "sf_test_"))
    assert len(made.secret) > 40
    assert made.secret.startswith(made.prefix)
    assert len(made.prefix) == len("sk_quota_") + 6
    async with sessions() as db:
        row = (await db.scalars(select(BuyerKey))).one()
    assert row.key_hash == hashlib.sha256(made.secret.encode()).hexdigest()
    assert made.secret not in (row.prefix, row.key_hash, row.name)
    other = await new_key(sessions, user.id)
    assert other.secret != made.secret


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"cap_units": 0, "cap_period": "day"}, "cap"),
        ({"cap_units": MAX_COST + 1, "cap_period": "day"}, "cap"),
        ({"cap_units": 5}, "cap"),
        ({"cap_period": "day"}, "cap"),
        ({"cap_units": 5, "cap_period": "week"}, "cap_period"),
        ({"expires_on": date(2026, 11, 30)}, "expires"),
    ],
)
async def test_bad_input_makes_no_key(sessions: Sessions, options: dict[str, object], field: str) -> None:
    user = await make_buyer(sessions, 0)
    arguments: dict[str, object] = {"name": "ok", **options}
    async with sessions() as db, db.begin():
        with pytest.raises(KeyInputError) as raised:
            await run(db, create_key, user_id=user.id, asset=ASSET, now=NOON, **arguments)
    assert raised.value.field == field
    async with sessions() as db:
        assert await run(db, list_keys, user.id) == []


async def test_name_of_100_characters_is_fine_and_trimmed(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 0)
    async with sessions() as db, db.begin():
        made = await run(db, create_key, user_id=user.id, asset=ASSET, name=" " + "n" * 100 + " ", now=NOON)
    assert made.name == "n" * 100


async def test_a_valid_call_charges_at_once_and_is_listed(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 100)
    made = await new_key(sessions, user.id, cap_units=50, cap_period="day")
    verdict = await verify(sessions, made.secret, 7)
    assert verdict.valid
    assert verdict.code is None
    assert (verdict.user_id, verdict.external_id, verdict.asset) == (user.id, user.external_id, ASSET)
    assert (verdict.charged, verdict.remaining, verdict.cap_remaining) == (7, 93, 43)
    assert await spendable(sessions, user.id) == 93
    second = await verify(sessions, made.secret, 3, now=NOON + 60)
    assert (second.remaining, second.cap_remaining) == (90, 40)
    async with sessions() as db:
        [view] = await run(db, list_keys, user.id, now=NOON + 120)
    assert (view.calls, view.used_units, view.used_this_period, view.status) == (2, 10, 10, "active")
    assert view.last_used_at is not None
    assert int(view.last_used_at.timestamp()) == NOON + 60
    assert (view.prefix, view.asset, view.cap_units, view.cap_period) == (made.prefix, ASSET, 50, "day")
    assert await spend_entries(sessions, user.id) == 2


async def test_each_verify_is_a_new_charge(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 10)
    made = await new_key(sessions, user.id)
    for _ in range(3):
        assert (await verify(sessions, made.secret, 2)).valid
    assert await spendable(sessions, user.id) == 4
    assert await spend_entries(sessions, user.id) == 3


async def test_unknown_revoked_and_expired_keys(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 100)
    unknown = await verify(sessions, "sk_quota_" + "x" * 32)
    assert (unknown.valid, unknown.code, unknown.user_id, unknown.external_id) == (
        False,
        Code.KEY_INVALID,
        None,
        None,
    )
    assert (await verify(sessions, "not a key at all")).code == Code.KEY_INVALID
    assert (await verify(sessions, "")).code == Code.KEY_INVALID

    revoked = await new_key(sessions, user.id)
    async with sessions() as db, db.begin():
        assert await run(db, revoke_key, user_id=user.id, key_id=revoked.id, now=NOON)
    async with sessions() as db, db.begin():
        assert not await run(db, revoke_key, user_id=user.id, key_id=revoked.id, now=NOON)  # already
    verdict = await verify(sessions, revoked.secret)
    assert (verdict.valid, verdict.code, verdict.user_id) == (False, Code.KEY_REVOKED, user.id)

    expiring = await new_key(sessions, user.id, expires_on=date(2026, 12, 5))
    assert (await verify(sessions, expiring.secret, now=at(2026, 12, 5, 23, 59, 59))).valid
    late = await verify(sessions, expiring.secret, now=at(2026, 12, 6))
    assert (late.valid, late.code) == (False, Code.KEY_EXPIRED)
    assert await spendable(sessions, user.id) == 99  # only the one valid call was charged
    async with sessions() as db:
        statuses = {v.id: v.status for v in await run(db, list_keys, user.id, now=at(2026, 12, 6))}
    assert statuses == {revoked.id: "revoked", expiring.id: "expired"}


async def test_someone_elses_key_cannot_be_revoked(sessions: Sessions) -> None:
    owner = await make_buyer(sessions, 10)
    stranger = await make_buyer(sessions, 0)
    made = await new_key(sessions, owner.id)
    async with sessions() as db, db.begin():
        with pytest.raises(KeyNotFound):
            await run(db, revoke_key, user_id=stranger.id, key_id=made.id)
        with pytest.raises(KeyNotFound):
            await run(db, revoke_key, user_id=owner.id, key_id=made.id + 999)
    assert (await verify(sessions, made.secret)).valid
    async with sessions() as db:
        assert await run(db, list_keys, stranger.id) == []


async def test_daily_cap_rolls_over_at_utc_midnight(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 1000)
    made = await new_key(sessions, user.id, cap_units=10, cap_period="day")
    late = at(2026, 12, 1, 23, 59, 59)
    assert (await verify(sessions, made.secret, 6, now=late)).cap_remaining == 4
    refused = await verify(sessions, made.secret, 5, now=late)
    assert (refused.valid, refused.code, refused.cap_remaining) == (False, Code.KEY_CAP_REACHED, 4)
    assert (await verify(sessions, made.secret, 4, now=late)).cap_remaining == 0
    assert (await verify(sessions, made.secret, 1, now=late)).code == Code.KEY_CAP_REACHED
    assert (await verify(sessions, made.secret, 0, now=late)).code == Code.KEY_CAP_REACHED
    next_day = await verify(sessions, made.secret, 10, now=at(2026, 12, 2))
    assert (next_day.valid, next_day.cap_remaining) == (True, 0)
    assert await usage_rows(sessions) == {"2026-12-01": 10, "2026-12-02": 10}
    assert await spendable(sessions, user.id) == 980
    async with sessions() as db:
        [view] = await run(db, list_keys, user.id, now=at(2026, 12, 3))
    assert (view.used_this_period, view.used_units, view.calls) == (0, 20, 3)


async def test_monthly_cap_rolls_over_at_the_month_start(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 1000)
    made = await new_key(sessions, user.id, cap_units=100, cap_period="month")
    assert (await verify(sessions, made.secret, 60, now=at(2026, 12, 3))).valid
    refused = await verify(sessions, made.secret, 41, now=at(2026, 12, 31, 23, 59, 59))
    assert (refused.code, refused.cap_remaining) == (Code.KEY_CAP_REACHED, 40)
    assert (await verify(sessions, made.secret, 101, now=at(2027, 1, 1))).code == Code.KEY_CAP_REACHED
    january = await verify(sessions, made.secret, 100, now=at(2027, 1, 1))
    assert (january.valid, january.cap_remaining) == (True, 0)
    assert await usage_rows(sessions) == {"2026-12": 60, "2027-01": 100}


async def test_cost_zero_only_checks(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 5)
    made = await new_key(sessions, user.id, cap_units=3, cap_period="day")
    check = await verify(sessions, made.secret, 0)
    assert (check.valid, check.charged, check.remaining, check.cap_remaining) == (True, 0, 5, 3)
    assert await spendable(sessions, user.id) == 5
    assert await spend_entries(sessions, user.id) == 0
    assert await usage_rows(sessions) == {}
    assert (await verify(sessions, made.secret, 5)).code == Code.KEY_CAP_REACHED
    assert (await verify(sessions, made.secret, 3)).valid

    empty = await make_buyer(sessions, 0)
    broke = await new_key(sessions, empty.id)
    refused = await verify(sessions, broke.secret, 0)
    assert (refused.valid, refused.code, refused.remaining) == (False, Code.INSUFFICIENT_BALANCE, 0)
    async with sessions() as db:
        [view] = await run(db, list_keys, empty.id)
    assert view.calls == 0  # refused calls are not counted


async def test_insufficient_balance_leaves_usage_and_counts_unchanged(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 5)
    made = await new_key(sessions, user.id, cap_units=100, cap_period="day")
    assert (await verify(sessions, made.secret, 4)).valid
    refused = await verify(sessions, made.secret, 2)
    assert (refused.valid, refused.code, refused.remaining, refused.cap_remaining) == (
        False,
        Code.INSUFFICIENT_BALANCE,
        1,
        96,
    )
    assert await usage_rows(sessions) == {"2026-12-01": 4}
    async with sessions() as db:
        [view] = await run(db, list_keys, user.id)
    assert (view.calls, view.used_units, view.used_this_period) == (1, 4, 4)
    assert await spendable(sessions, user.id) == 1
    assert (await verify(sessions, made.secret, 1)).remaining == 0
    assert (await verify(sessions, made.secret, 1)).code == Code.INSUFFICIENT_BALANCE
    assert await usage_rows(sessions) == {"2026-12-01": 5}


async def test_insufficient_balance_on_the_first_call_of_a_period_keeps_no_usage_row(
    sessions: Sessions,
) -> None:
    user = await make_buyer(sessions, 1)
    made = await new_key(sessions, user.id, cap_units=10, cap_period="day")
    assert (await verify(sessions, made.secret, 2)).code == Code.INSUFFICIENT_BALANCE
    assert await usage_rows(sessions) == {}


async def test_a_key_only_spends_its_own_asset(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 50, asset="coins")
    made = await new_key(sessions, user.id)  # a quota key; the buyer has coins only
    refused = await verify(sessions, made.secret, 1)
    assert (refused.code, refused.asset) == (Code.INSUFFICIENT_BALANCE, ASSET)
    assert await spendable(sessions, user.id, "coins") == 50


async def test_a_cost_outside_the_range_is_a_programming_error(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        for cost in (-1, MAX_COST + 1, True):
            with pytest.raises(ValueError):
                await run(db, verify_and_charge, key="sk_x", cost=cost)  # type: ignore[arg-type]


async def test_charges_report_low_and_depleted_balances_to_hosts(sessions: Sessions) -> None:
    user = await make_buyer(sessions, 12)
    made = await new_key(sessions, user.id)
    low = {ASSET: 10}
    async with sessions() as db, db.begin():
        assert (await run(db, verify_and_charge, key=made.secret, cost=1, now=NOON, low_thresholds=low)).valid
    assert "balance.low" not in await host_events(sessions, user.id)  # 11 is not below 10
    async with sessions() as db, db.begin():
        assert (await run(db, verify_and_charge, key=made.secret, cost=2, now=NOON, low_thresholds=low)).valid
    assert (await host_events(sessions, user.id)).count("balance.low") == 1
    assert (await verify(sessions, made.secret, 9)).remaining == 0
    assert "balance.depleted" in await host_events(sessions, user.id)
    before = await host_events(sessions, user.id)
    assert (await verify(sessions, made.secret, 1)).code == Code.INSUFFICIENT_BALANCE
    assert await host_events(sessions, user.id) == before  # a refused call reports nothing
