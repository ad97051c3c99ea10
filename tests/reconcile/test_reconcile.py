"""Reconciliation: lost webhooks replayed from Stripe's event list, stale orders settled, one runner."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.reconcile.cli import parse_since
from app.sandbox.state import HOSTED
from app.settings import Settings
from tests.support.shop import Shop, wait_for


def test_lost_webhooks_are_replayed_once(shop: Shop) -> None:
    buyers = [shop.buyer().sign_up() for _ in range(3)]
    sessions = [b.start("coins-500") for b in buyers]
    shop.sandbox.control("POST", "deliveries/pause")  # every webhook from here on is "lost"
    for sid in sessions:
        assert shop.pay(sid)["status"] == "succeeded"
    assert shop.rows("SELECT id FROM ledger_entry") == []

    summary = shop.reconcile()
    assert not summary.skipped
    replayed_types = [etype for _eid, etype, _outcome in summary.replayed]
    assert replayed_types.count("checkout.session.completed") == 3
    assert all(b.balances()["coins"] == 550 for b in buyers)
    # Every event of the payments came by reconcile (the buyers' Customers were made, and their
    # customer.created delivered, before the pause).
    paid_events = shop.rows("SELECT source FROM stripe_event WHERE type NOT LIKE 'customer.%'")
    assert {row["source"] for row in paid_events} == {"reconcile"}

    again = shop.reconcile()
    assert again.replayed == []
    assert again.orders_fixed == []
    shop.sandbox.control("POST", "deliveries/resume")
    shop.flush()
    assert len(shop.rows("SELECT id FROM ledger_entry")) == 3
    assert all(b.balances()["coins"] == 550 for b in buyers)


def test_replayed_events_of_the_other_mode_are_ignored(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconcile replays go through the same livemode check as webhooks."""
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-500")
    shop.sandbox.control("POST", "deliveries/pause")
    assert shop.pay(sid)["status"] == "succeeded"
    monkeypatch.setattr(Settings, "stripe_livemode", property(lambda _self: True))  # as if our key were live
    summary = shop.reconcile(older_than=3600)  # events only: the order re-check is not about events
    outcomes = [outcome for _eid, etype, outcome in summary.replayed if etype == "checkout.session.completed"]
    assert outcomes
    assert all(outcome.startswith("ignored: livemode") for outcome in outcomes)
    assert shop.rows("SELECT id FROM ledger_entry") == []


def test_stale_orders_are_settled_from_their_session(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    # Three packs: a second ask for a pack whose session is still open would reuse that session.
    paid, expired, still_open = buyer.start("coins-100"), buyer.start("coins-500"), buyer.start("coins-2500")
    shop.sandbox.control("POST", "deliveries/pause")
    shop.pay(paid)
    shop.sandbox.call(lambda: shop.sandbox.state.expire_session(expired, HOSTED))
    # Events cannot help (the cursor is past them): only the order re-check can.
    summary = shop.reconcile(since=2**40)
    assert summary.events_listed == 0
    fixed = {oid: after for oid, _before, after in summary.orders_fixed}
    assert fixed == {shop.order(paid)["id"]: "paid", shop.order(expired)["id"]: "expired"}
    assert shop.order(still_open)["status"] == "open"
    assert buyer.balances()["coins"] == 100
    # Young orders are left alone by default.
    assert shop.reconcile(older_than=3600).orders_checked == 0


def test_one_runner_at_a_time(settings: Settings) -> None:
    from app.db.config import make_engine
    from app.reconcile.service import release_lease, session_factory, take_lease, unit_of_work

    async def run() -> list[bool]:
        engine = make_engine(settings)
        sessions = session_factory(engine)
        results = []
        try:
            for holder, ttl in (("a", 60), ("b", 60), ("a", 60)):
                async with unit_of_work(sessions) as db:
                    results.append(await take_lease(db, "reconcile", holder, ttl))
            async with unit_of_work(sessions) as db:
                await release_lease(db, "reconcile", "a")
            async with unit_of_work(sessions) as db:
                results.append(await take_lease(db, "reconcile", "b", -1))  # b holds it, already expired
            async with unit_of_work(sessions) as db:
                results.append(await take_lease(db, "reconcile", "c", 60))  # so c may take it
            async with unit_of_work(sessions) as db:
                results.append(await take_lease(db, "reconcile", "b", 60))
        finally:
            await engine.dispose()
        return results

    assert asyncio.run(run()) == [True, False, True, True, True, False]


def test_a_second_run_skips_while_the_lease_is_held(sqlite_shop: Shop) -> None:
    from app.db.config import make_engine
    from app.reconcile.service import session_factory, take_lease, unit_of_work

    async def hold() -> None:
        engine = make_engine(sqlite_shop.settings)
        try:
            async with unit_of_work(session_factory(engine)) as db:
                assert await take_lease(db, "reconcile", "someone-else", 60)
        finally:
            await engine.dispose()

    asyncio.run(hold())
    assert sqlite_shop.reconcile().skipped


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000", 1700000000),
        ("2023-11-14T22:13:20Z", 1700000000),
        ("2023-11-14T22:13:20", 1700000000),
        ("2023-11-15T06:13:20+08:00", 1700000000),
        (None, None),
    ],
)
def test_since_accepts_unix_and_iso(value: str | None, expected: int | None) -> None:
    assert parse_since(value) == expected


def test_cli_reports_what_it_replayed(
    sqlite_shop: Shop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app.reconcile.cli import reconcile_command
    from app.settings import get_settings

    buyer = sqlite_shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    sqlite_shop.sandbox.control("POST", "deliveries/pause")
    sqlite_shop.pay(sid)
    settings = sqlite_shop.settings
    env = {
        "STOREFRONT_DATABASE_URL": settings.database_url,
        "STOREFRONT_STRIPE_API_BASE": settings.stripe_api_base,
        "STRIPE_SECRET_KEY": settings.stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secrets[0],
        "STOREFRONT_VAR_DIR": str(tmp_path / "cli-var"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        result = CliRunner().invoke(reconcile_command, ["--since", since, "--older-than", "3600"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "checkout.session.completed" in result.output
    assert "replayed" in result.output
    assert buyer.balances()["coins"] == 100
    bad = CliRunner().invoke(reconcile_command, ["--since", "last tuesday"])
    assert bad.exit_code == 2
    assert "ISO date-time" in bad.output


def test_webhook_poll_and_reconcile_racing_credit_once(shop: Shop) -> None:
    """The same payment reaches us three ways at once; the ledger key lets exactly one credit."""
    buyers = [shop.buyer().sign_up() for _ in range(3)]
    sessions = [b.start("coins-2500") for b in buyers]
    shop.sandbox.control("POST", "deliveries/pause")
    for sid in sessions:
        shop.pay(sid)
    barrier = threading.Barrier(3 + len(buyers) * 2)
    errors: list[BaseException] = []

    def guarded(fn):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                barrier.wait()
                fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [
        threading.Thread(target=guarded(lambda: shop.sandbox.control("POST", "deliveries/resume"))),
        threading.Thread(target=guarded(lambda: shop.reconcile())),
        threading.Thread(target=guarded(lambda: shop.reconcile())),
    ]
    for buyer, sid in zip(buyers, sessions, strict=True):
        threads.append(threading.Thread(target=guarded(lambda b=buyer, s=sid: b.status(s))))
        threads.append(threading.Thread(target=guarded(lambda b=buyer, s=sid: b.status(s))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    shop.flush()
    wait_for(lambda: all(shop.order(s)["status"] == "paid" for s in sessions))
    entries = shop.rows("SELECT order_id, units FROM ledger_entry ORDER BY order_id")
    assert [e["units"] for e in entries] == [3000, 3000, 3000]
    assert len({e["order_id"] for e in entries}) == 3
    assert all(b.balances()["coins"] == 3000 for b in buyers)
    assert (
        shop.rows(
            "SELECT b.user_id FROM balance b WHERE b.available <> "
            "(SELECT COALESCE(SUM(units), 0) FROM ledger_entry e"
            " WHERE e.user_id = b.user_id AND e.asset = b.asset)"
        )
        == []
    )


def test_the_server_reconciles_in_the_background(
    sqlite_url: str, sqlite_settings: object, tmp_path: Path
) -> None:
    from tests.support.shop import run_shop

    with run_shop(tmp_path, sqlite_url, reconcile_interval_seconds=1) as shop:
        buyer = shop.buyer().sign_up()
        sid = buyer.start("coins-100")
        shop.sandbox.control("POST", "deliveries/pause")
        shop.pay(sid)
        # Nobody polls and no webhook comes: only the periodic task can credit this.
        wait_for(
            lambda: shop.rows("SELECT source FROM stripe_event WHERE type = 'checkout.session.completed'")
        )
        assert shop.order(sid)["status"] == "paid"
        # (customer.created came before the pause, by webhook)
        paid_events = shop.rows("SELECT source FROM stripe_event WHERE type NOT LIKE 'customer.%'")
        assert {r["source"] for r in paid_events} == {"reconcile"}
        assert shop.rows("SELECT name FROM job_lease") == [{"name": "reconcile"}]
