"""Hot reload: swaps within 2 s, keeps the last good catalogue on a bad edit."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from app.catalogue import Catalogue, CatalogueError, CatalogueHolder

from .factories import make_pack

pytestmark = pytest.mark.anyio

WritePricing = Callable[..., Path]


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> float:
    """Wait until ``condition()`` holds; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def age(path: Path, seconds: float = 10) -> None:
    """Backdate mtime so the file's stat counts as settled."""
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.fixture
async def holder(write_pricing: WritePricing) -> AsyncIterator[CatalogueHolder]:
    path = write_pricing(make_pack(price="9.99"))
    age(path)
    holder = CatalogueHolder(path)  # default 0.5 s interval: the real SLA
    await holder.start()
    yield holder
    await holder.stop()


def test_startup_refuses_invalid_file(write_pricing: WritePricing) -> None:
    path = write_pricing(make_pack(price="9.999"))
    with pytest.raises(CatalogueError, match=re.escape("pack 'pro': price: 9.999 has 3 decimals")):
        CatalogueHolder(path)


def test_startup_refuses_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        CatalogueHolder(tmp_path / "missing.toml")


def test_default_path_from_env(write_pricing: WritePricing, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pricing(make_pack())
    monkeypatch.setenv("STOREFRONT_PRICING", str(path))
    assert CatalogueHolder().path == path


async def test_valid_edit_is_served_within_two_seconds(
    holder: CatalogueHolder, write_pricing: WritePricing
) -> None:
    seen: list[Catalogue] = []
    holder.subscribe(seen.append)
    old = holder.version
    with capture_logs() as logs:
        write_pricing(make_pack(price="8.99"))
        await eventually(lambda: holder.version != old)
    pro = holder.catalogue.get("pro")
    assert pro is not None
    assert pro.price_minor == 899
    assert holder.problems == []
    assert [c.version for c in seen] == [holder.version]
    assert any(e["event"] == "catalogue.reloaded" and e["version"] == holder.version for e in logs)


async def test_invalid_edit_keeps_old_catalogue_then_recovers(
    holder: CatalogueHolder, write_pricing: WritePricing
) -> None:
    good = holder.catalogue
    seen: list[Catalogue] = []
    holder.subscribe(seen.append)
    with capture_logs() as logs:
        write_pricing(make_pack(price="49.999"), make_pack(id="b", units=0, order=2))
        await eventually(lambda: bool(holder.problems))
    assert holder.catalogue is good
    assert "pack 'pro': price: 49.999 has 3 decimals but USD allows 2" in holder.problems
    assert "pack 'b': units: must be a positive integer, got 0" in holder.problems
    failed = [e for e in logs if e["event"] == "catalogue.reload_failed"]
    assert {e["problem"] for e in failed} == set(holder.problems)
    assert all(e["log_level"] == "error" for e in failed)
    assert seen == []

    write_pricing(make_pack(price="7.99"))
    await eventually(lambda: not holder.problems)
    assert holder.catalogue is not good
    pro = holder.catalogue.get("pro")
    assert pro is not None
    assert pro.price_minor == 799
    assert len(seen) == 1


async def test_reverting_to_live_content_clears_problems(
    holder: CatalogueHolder, write_pricing: WritePricing
) -> None:
    good = holder.catalogue
    write_pricing(make_pack(price="oops"))
    await eventually(lambda: bool(holder.problems))
    write_pricing(make_pack(price="9.99"))  # same bytes as the live catalogue
    await eventually(lambda: not holder.problems)
    assert holder.catalogue is good


async def test_deleted_file_keeps_serving(holder: CatalogueHolder, write_pricing: WritePricing) -> None:
    good = holder.catalogue
    holder.path.unlink()
    await eventually(lambda: bool(holder.problems))
    assert holder.catalogue is good
    assert "cannot read" in holder.problems[0]
    write_pricing(make_pack(price="5.99"))
    await eventually(lambda: not holder.problems and holder.catalogue is not good)


async def test_no_read_while_stat_unchanged(
    write_pricing: WritePricing, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pricing(make_pack())
    age(path)
    holder = CatalogueHolder(path)

    def boom(self: Path) -> bytes:
        raise AssertionError("file read although its stat did not change")

    monkeypatch.setattr(Path, "read_bytes", boom)
    for _ in range(3):
        assert await holder.refresh() is False


async def test_same_size_rewrite_within_one_tick_is_seen(write_pricing: WritePricing) -> None:
    # Two same-size writes can share an mtime; the racy-stat rule re-reads.
    path = write_pricing(make_pack(price="1.99"))
    holder = CatalogueHolder(path, interval=0.05)
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(b"1.99", b"2.99"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # simulate the same tick
    await holder.refresh()
    pro = holder.catalogue.get("pro")
    assert pro is not None
    assert pro.price_minor == 299


async def test_listeners_async_failing_and_unsubscribed(write_pricing: WritePricing) -> None:
    path = write_pricing(make_pack())
    age(path)
    holder = CatalogueHolder(path)
    calls: list[str] = []

    async def async_listener(catalogue: Catalogue) -> None:
        calls.append("async " + catalogue.version)

    def broken(catalogue: Catalogue) -> None:
        raise RuntimeError("listener bug")

    def removed(catalogue: Catalogue) -> None:
        calls.append("removed")

    holder.subscribe(broken)
    holder.subscribe(async_listener)
    holder.subscribe(removed)()
    write_pricing(make_pack(price="3.99"))
    with capture_logs() as logs:
        assert await holder.refresh() is True
    assert calls == ["async " + holder.version]
    assert any(e["event"] == "catalogue.listener_failed" for e in logs)


async def test_start_is_idempotent_and_stop_cancels(write_pricing: WritePricing) -> None:
    holder = CatalogueHolder(write_pricing(make_pack()), interval=0.05)
    await holder.start()
    task = holder._task
    assert task is not None
    await holder.start()
    assert holder._task is task
    assert not task.done()
    await holder.stop()
    assert task.cancelled()
    assert not holder.running
    await holder.stop()  # second stop is a no-op


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # advanced-alchemy import noise
def test_litestar_lifespan_hooks(write_pricing: WritePricing) -> None:
    from litestar import Litestar
    from litestar.testing import TestClient

    holder = CatalogueHolder(write_pricing(make_pack()), interval=0.05)
    app = Litestar(route_handlers=[], on_startup=[holder.start], on_shutdown=[holder.stop])
    with TestClient(app):
        assert holder.running
    assert not holder.running
