"""The shop's own deliverer: started by the app's lifespan (on by default), off by a setting."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from app.db.config import make_engine
from app.db.writer import STATE_KEY as WRITER_KEY
from app.db.writer import background_writer
from app.settings import Settings
from app.web.factory import create_app
from tests.host_webhooks.conftest import emit_committed, endpoint, rows
from tests.host_webhooks.receiver import Receiver
from tests.support.aio import run_async
from tests.support.servers import serve_in_thread
from tests.support.shop import wait_for
from tests.support.writers import recording_writer


async def _depleted_for(settings: Settings, app: Receiver, base: str) -> str:
    """An endpoint for ``balance.depleted`` at the receiver, then one such event committed."""
    engine = make_engine(settings)
    try:
        await endpoint(engine, app, base + "/hooks", "balance.depleted")
        return await emit_committed(engine, "balance.depleted", available=0)
    finally:
        await engine.dispose()


def test_the_app_delivers_what_is_emitted(settings: Settings, receiver: tuple[Receiver, str]) -> None:
    app, base = receiver
    assert Settings().host_webhooks_deliver  # the default

    shop = create_app(replace(settings, host_webhooks_poll_seconds=0.05))
    with serve_in_thread(shop):
        started = time.monotonic()
        event_id = run_async(_depleted_for(settings, app, base))
        wait_for(lambda: app.verified(), timeout=15, interval=0.02)
        took = time.monotonic() - started
    assert [e["id"] for e in app.verified()] == [event_id]
    assert took < 5, took


def test_the_setting_turns_the_deliverer_off(
    settings: Settings, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    app, base = receiver

    async def prepare() -> None:
        engine = make_engine(settings)
        try:
            await endpoint(engine, app, base + "/hooks")
            await emit_committed(engine)
        finally:
            await engine.dispose()

    async def fanned() -> list[dict[str, object]]:
        engine = make_engine(settings)
        try:
            return await rows(engine, "SELECT fanned_out FROM host_event")
        finally:
            await engine.dispose()

    shop = create_app(replace(settings, host_webhooks_deliver=False, host_webhooks_poll_seconds=0.05))
    with serve_in_thread(shop):
        run_async(prepare())
        time.sleep(0.5)  # ten polls' worth
    assert app.calls == []
    assert [bool(r["fanned_out"]) for r in run_async(fanned())] == [False]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (True, 1.0, 10.0)),
        (
            {
                "STOREFRONT_HOST_WEBHOOKS_DELIVER": "0",
                "STOREFRONT_HOST_WEBHOOKS_POLL": "0.25",
                "STOREFRONT_HOST_WEBHOOKS_TIMEOUT": "5",
            },
            (False, 0.25, 5.0),
        ),
        (
            {"STOREFRONT_HOST_WEBHOOKS_DELIVER": "off", "STOREFRONT_HOST_WEBHOOKS_POLL": "0"},
            (False, 0.05, 10.0),
        ),
    ],
)
def test_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], expected: tuple[bool, float, float]
) -> None:
    monkeypatch.setenv("STOREFRONT_VAR_DIR", str(tmp_path))
    for name in (
        "STOREFRONT_HOST_WEBHOOKS_DELIVER",
        "STOREFRONT_HOST_WEBHOOKS_POLL",
        "STOREFRONT_HOST_WEBHOOKS_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    read = Settings.from_env()
    assert (
        read.host_webhooks_deliver,
        read.host_webhooks_poll_seconds,
        read.host_webhooks_timeout_seconds,
    ) == expected


def test_on_sqlite_the_deliverer_writes_through_the_money_writer(
    settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    """Its own transactions would take SQLite's write lock from under the writer's batches."""
    app, base = receiver

    shop = create_app(replace(settings, host_webhooks_poll_seconds=0.05))
    writer = recording_writer(settings.database_url) if settings.is_sqlite else None
    if writer is not None:
        shop.state[WRITER_KEY] = writer
    with serve_in_thread(shop):
        event_id = run_async(_depleted_for(settings, app, base))
        wait_for(lambda: app.verified(), timeout=15, interval=0.02)
        # the attempt's record follows the POST
        wait_for(lambda: writer is None or "_record_op" in writer.background, timeout=5, interval=0.02)
    assert [e["id"] for e in app.verified()] == [event_id]
    if writer is not None:
        assert {"_fan_out_op", "claim", "_record_op"} <= set(writer.background), writer.background
    else:  # PostgreSQL: the deliverer's own transactions (row locks block nobody's batch)
        assert background_writer(shop) is None
