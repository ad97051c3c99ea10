"""A pack's ``stripe_price`` checked with Stripe (the sandbox on a real port) at start-up and
before every reload: a Price that disagrees refuses the reload, naming the pack, and the last
good catalogue stays live; Stripe out of reach leaves the catalogue unverified, not refused."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
import stripe

from app.catalogue import CatalogueError, CatalogueHolder
from app.catalogue.reload import PricesUnverified
from app.checkout.prices import price_check
from app.stripe_gateway import StripeGateway
from tests.catalogue.factories import make_pack, render
from tests.conftest import make_settings
from tests.support.sandbox_server import TEST_KEY, SandboxServer, start_sandbox
from tests.support.servers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox() as server:
        yield server


def _sdk(sandbox: SandboxServer) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})


def _price(sandbox: SandboxServer, amount: int = 999, currency: str = "usd") -> str:
    made = _sdk(sandbox).v1.prices.create(
        {"currency": currency, "unit_amount": amount, "product_data": {"name": "Pro"}}
    )
    return str(made.id)


@pytest.fixture
async def gateway(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[StripeGateway]:
    settings = make_settings(
        tmp_path, "sqlite+aiosqlite:///unused.db", stripe_api_base=sandbox.url, stripe_secret_key=TEST_KEY
    )
    made = StripeGateway(settings)
    yield made
    await made.close()


def _write(path: Path, **pack: object) -> Path:
    path.write_bytes(render(make_pack(**pack)))
    past = time.time() - 10  # a settled stat: the next poll trusts it
    os.utime(path, (past, past))
    return path


async def test_a_reload_whose_price_disagrees_is_refused_and_the_last_good_one_stays(
    sandbox: SandboxServer, gateway: StripeGateway, tmp_path: Path
) -> None:
    good, cheaper = _price(sandbox, 999), _price(sandbox, 499)
    path = _write(tmp_path / "pricing.toml", stripe_price=good)
    holder = CatalogueHolder(path, check=price_check(gateway))
    await holder.verify()
    assert holder.verified
    live = holder.catalogue

    # The file says 9.99 but points at a Price of 4.99: refused, naming the pack.
    _write(path, stripe_price=cheaper, units=200)
    assert await holder.refresh() is False
    assert holder.catalogue is live
    assert holder.problems == [
        f"pack 'pro': stripe_price: Stripe's {cheaper} costs 499 minor units, the pack says 999 (9.99 USD)"
    ]

    # Another currency, an unknown Price: refused too.
    euros = _price(sandbox, 999, "eur")
    _write(path, stripe_price=euros, units=300)
    assert await holder.refresh() is False
    assert holder.problems == [f"pack 'pro': stripe_price: Stripe's {euros} is in EUR, the pack says USD"]
    _write(path, stripe_price="price_doesnotexist", units=400)
    assert await holder.refresh() is False
    [problem] = holder.problems
    assert problem.startswith("pack 'pro': stripe_price: Stripe refused price_doesnotexist")
    assert holder.catalogue is live

    # A Price that agrees is swapped in; archiving it in Stripe refuses the next edit.
    _write(path, stripe_price=good, units=500)
    assert await holder.refresh() is True
    assert holder.catalogue.packs[0].units == 500
    assert holder.problems == []
    _sdk(sandbox).v1.prices.update(good, {"active": False})
    _write(path, stripe_price=good, units=600)
    assert await holder.refresh() is False
    archived = f"pack 'pro': stripe_price: Stripe's {good} is archived (inactive), the pack is on sale"
    assert holder.problems == [archived]
    assert holder.catalogue.packs[0].units == 500
    # A retired pack may keep its archived Price.
    _write(path, stripe_price=good, units=600, active=False)
    assert await holder.refresh() is True


async def test_start_up_refuses_a_price_that_disagrees(
    sandbox: SandboxServer, gateway: StripeGateway, tmp_path: Path
) -> None:
    wrong = _price(sandbox, 1299)
    path = _write(tmp_path / "pricing.toml", stripe_price=wrong)
    holder = CatalogueHolder(path, check=price_check(gateway))
    with pytest.raises(CatalogueError) as refused:
        await holder.verify()
    assert refused.value.problems == (
        f"pack 'pro': stripe_price: Stripe's {wrong} costs 1299 minor units, the pack says 999 (9.99 USD)",
    )


async def test_a_catalogue_without_prices_asks_stripe_nothing(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, "sqlite+aiosqlite:///unused.db", stripe_api_base=f"http://127.0.0.1:{free_port()}"
    )
    unreachable = StripeGateway(settings)
    try:
        holder = CatalogueHolder(_write(tmp_path / "pricing.toml"), check=price_check(unreachable))
        started = time.monotonic()
        await holder.verify()
        assert holder.verified
        assert time.monotonic() - started < 0.5  # no network round trip at all
    finally:
        await unreachable.close()


async def test_stripe_out_of_reach_at_start_up_starts_unverified(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, "sqlite+aiosqlite:///unused.db", stripe_api_base=f"http://127.0.0.1:{free_port()}"
    )
    unreachable = StripeGateway(settings)
    try:
        path = _write(tmp_path / "pricing.toml", stripe_price=_price(sandbox, 999))
        holder = CatalogueHolder(path, check=price_check(unreachable), check_timeout=10)
        await holder.verify()  # does not raise: an outage must not keep the shop down
        assert not holder.verified
        assert holder.catalogue.packs[0].stripe_price
        # A reload while Stripe is out of reach is taken, still unverified.
        _write(path, stripe_price=holder.catalogue.packs[0].stripe_price, units=200)
        assert await holder.refresh() is True
        assert not holder.verified
    finally:
        await unreachable.close()


async def test_a_reload_refused_for_its_price_is_taken_once_the_price_is_fixed_in_stripe(
    sandbox: SandboxServer, gateway: StripeGateway, tmp_path: Path
) -> None:
    """Regression: the refused file was only looked at again when saved again, so a Price fixed
    in Stripe's dashboard stayed refused; the periodic re-check now takes it."""
    price = _price(sandbox, 999)
    path = _write(tmp_path / "pricing.toml", stripe_price=price)
    holder = CatalogueHolder(path, check=price_check(gateway), recheck_seconds=0.2)
    await holder.verify()
    _sdk(sandbox).v1.prices.update(price, {"active": False})
    _write(path, stripe_price=price, units=700)
    assert await holder.refresh() is False
    assert holder.problems == [
        f"pack 'pro': stripe_price: Stripe's {price} is archived (inactive), the pack is on sale"
    ]
    # Not yet due, and still archived when due: the live catalogue stays, the problem is kept.
    await holder.refresh()
    await anyio.sleep(0.25)
    await holder.refresh()
    assert holder.catalogue.packs[0].units == 100
    assert len(holder.problems) == 1
    # Fixed in Stripe, the file untouched: the next due re-check swaps it in.
    _sdk(sandbox).v1.prices.update(price, {"active": True})
    await holder.refresh()
    assert holder.catalogue.packs[0].units == 100  # not due yet: no round trip on every poll
    await anyio.sleep(0.25)
    assert await holder.refresh() is False  # the file did not change; the swap is the re-check's
    assert holder.catalogue.packs[0].units == 700
    assert holder.problems == []
    assert holder.verified


async def test_a_live_catalogue_stripe_contradicts_is_asked_again_until_it_agrees(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Stripe unreachable at start, then contradicting, then fixed: the problem is shown, then cleared."""
    price = _price(sandbox, 999)
    path = _write(tmp_path / "pricing.toml", stripe_price=price)
    answers: list[list[str] | None] = [None, ["pack 'pro': wrong"], []]

    async def check(_catalogue: object) -> list[str]:
        answer = answers.pop(0)
        if answer is None:
            raise PricesUnverified("down")
        return answer

    holder = CatalogueHolder(path, check=check, recheck_seconds=0)
    await holder.verify()
    assert not holder.verified
    await holder.refresh()
    assert (holder.verified, holder.problems) == (True, ["pack 'pro': wrong"])
    await holder.refresh()
    assert (holder.verified, holder.problems) == (True, [])
    assert answers == []
