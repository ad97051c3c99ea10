"""compose.yaml's topology without containers: two ``storefront serve`` processes, one PostgreSQL, one Redis.

Each replica is a separate OS process started by the real command (``storefront serve
--no-migrate``, as compose runs it after its one-shot ``database upgrade``), on a free port,
with production's shape of settings: its own var dir, the same secret key, PostgreSQL, Redis for
sessions and rate limits, a trusted proxy, a metrics token. Only Stripe differs: production
refuses the sandbox (``app/settings.py``), so the replicas run with ``STOREFRONT_ENV``
development and the sandbox's API given explicitly (``STOREFRONT_STRIPE_API_BASE``), which is
also why nothing here is mounted in a replica. The sandbox posts its webhooks to the second
replica while the buyer signs up on the first.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from app.db.migrate import upgrade
from app.settings import PROJECT_ROOT
from tests.conftest import (
    PG_HOST,
    PG_PORT,
    _create_pg_database,
    _drop_pg_database,
    make_settings,
    missing,
    postgres_answers,
)
from tests.support.sandbox_server import TEST_KEY, SandboxServer, start_sandbox
from tests.support.servers import free_port
from tests.support.shop import PASSWORD, Buyer, run_sql, sandbox_config, session_id_of, wait_for

STOREFRONT = Path(sys.executable).with_name("storefront")
REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.postgres
SERVE_FLAGS = ("--workers", "1", "--no-migrate")
METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(16)


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def answers(self) -> bool:
        assert self.proc.poll() is None, f"replica {self.url} exited:\n{self.log.read_text()[-3000:]}"
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server and the workers it started
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Topology:
    replicas: list[Replica]
    sandbox: SandboxServer
    env: dict[str, str]
    settings: Any

    @property
    def urls(self) -> list[str]:
        return [replica.url for replica in self.replicas]


def _replica_env(tmp_path: Path, name: str, shared: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STOREFRONT_", "STRIPE_", "LITESTAR_")) and key != "PORT"
    }
    return {**env, **shared, "STOREFRONT_VAR_DIR": str(tmp_path / f"var-{name}")}


def _start(env: dict[str, str], port: int, log: Path) -> Replica:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(STOREFRONT), "serve", "--host", "127.0.0.1", "--port", str(port), *SERVE_FLAGS],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(f"http://127.0.0.1:{port}", proc, log)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """One topology for the module (starting two replicas costs seconds); each test uses its own buyer."""
    if not postgres_answers():
        missing("PostgreSQL does not answer on 127.0.0.1:5432")
    if not _redis_answers():
        missing("Redis does not answer on 127.0.0.1:6379")
    tmp_path = tmp_path_factory.mktemp("topology")
    name = _create_pg_database()
    try:
        yield from _topology(tmp_path, f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}")
    finally:
        _drop_pg_database(name)


def _topology(tmp_path: Path, database_url: str) -> Iterator[Topology]:
    settings = make_settings(tmp_path, database_url)
    upgrade(settings)  # once, before either replica starts (compose's "migrate" service)
    ports = [free_port(), free_port()]
    public, webhooks = (f"http://127.0.0.1:{port}" for port in ports)
    whsec = "whsec_" + secrets.token_hex(16)
    with start_sandbox(sandbox_config(webhooks, whsec)) as sandbox:
        shared = {
            "STOREFRONT_ENV": "development",
            "STOREFRONT_BASE_URL": public,
            "STOREFRONT_DATABASE_URL": database_url,
            "STOREFRONT_REDIS_URL": REDIS_URL,
            "STOREFRONT_SECRET_KEY": secrets.token_urlsafe(48),
            "STRIPE_SECRET_KEY": TEST_KEY,
            "STRIPE_WEBHOOK_SECRET": whsec,
            "STOREFRONT_STRIPE_API_BASE": sandbox.url,
            "STOREFRONT_TRUSTED_PROXIES": "127.0.0.1",
            "STOREFRONT_METRICS_TOKEN": METRICS_TOKEN,
            "STOREFRONT_LOG_LEVEL": "WARNING",
        }
        replicas = [
            _start(_replica_env(tmp_path, name, shared), port, tmp_path / f"{name}.log")
            for name, port in zip("ab", ports, strict=True)
        ]
        try:
            for replica in replicas:
                wait_for(replica.answers, timeout=90, interval=0.2)
            yield Topology(replicas, sandbox, shared, settings)
        finally:
            for replica in replicas:
                replica.stop()


def _same_browser(first: Buyer, second: Buyer) -> None:
    """``second`` carries ``first``'s cookies: one browser whose requests land on either replica."""
    for cookie in first.client.cookies.jar:
        second.client.cookies.jar.set_cookie(cookie)


def _pay_on_hosted_page(buyer: Buyer, location: str) -> str:
    """Fill in the sandbox's hosted Checkout page as a browser would; returns where it sends the buyer."""
    page = buyer.client.get(location)
    assert page.status_code == 200, page.text[:500]
    assert 'name="card_number"' in page.text
    paid = buyer.client.post(
        location,
        data={
            "email": buyer.email,
            "method": "card",
            "card_number": "4242 4242 4242 4242",
            "expiry": "12 / 34",
            "cvc": "123",
            "name": "Ann Buyer",
        },
    )
    assert paid.status_code == 303, paid.text[:500]
    return str(paid.headers["location"])


def test_two_replicas_share_sessions_orders_and_balances(topology: Topology) -> None:
    a, b = topology.urls
    first = Buyer(SimpleNamespace(url=a), f"two-{secrets.token_hex(4)}@example.com", ip="10.77.0.1")  # type: ignore[arg-type]
    second = Buyer(SimpleNamespace(url=b), first.email, ip="10.77.0.1")  # type: ignore[arg-type]
    try:
        first.sign_up(PASSWORD)
        _same_browser(first, second)
        # Signed in on A, the buyer is signed in on B: the session lives in Redis.
        assert second.balances() == first.balances()
        bought = second.buy("coins-100")
        assert bought.status_code == 303, bought.text[:500]
        location = bought.headers["location"]
        assert location.startswith(topology.sandbox.url + "/c/pay/cs_")
        session_id = session_id_of(location)
        success = _pay_on_hosted_page(second, location)
        assert success.startswith(f"{a}/checkout/success")  # the shop's public URL
        assert session_id_of(success) == session_id
        # The sandbox's webhook reached B; both replicas read the credit from the shared database.
        wait_for(lambda: second.balances().get("coins") == 100, timeout=30, interval=0.2)
        assert first.balances()["coins"] == 100
        assert first.status(session_id) == second.status(session_id) == "paid"
        orders = run_sql(
            topology.settings,
            "SELECT o.status FROM purchase_order o JOIN user_account u ON u.id = o.user_id"
            " WHERE u.email = :email",
            email=first.email,
        )
        assert [row["status"] for row in orders] == ["paid"]
        # Each replica's own counters, behind its token.
        for url in topology.urls:
            assert httpx.get(url + "/metrics").status_code == 401
            metrics = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert metrics.status_code == 200
            assert "storefront" in metrics.text
    finally:
        first.close()
        second.close()


def _server_key(env: dict[str, str]) -> str:
    made = subprocess.run(
        [str(STOREFRONT), "api-keys", "create", "host", "--scopes", "read,spend,grant"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return made.stdout.strip()


async def _debit_through_both(urls: list[str], key: str, customer: str, count: int) -> list[httpx.Response]:
    """``count`` debits of 1, key i sent to replica i % 2, and keys 0..49 also to the other, 16 at a time."""
    gate = asyncio.Semaphore(16)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:

        async def debit(url: str, n: int) -> httpx.Response:
            async with gate:
                return await client.post(
                    f"{url}/api/v1/customers/{customer}/debits",
                    json={"asset": "coins", "units": 1, "reason": f"call {n}"},
                    headers={"Idempotency-Key": f"call-{n}"},
                )

        calls = [debit(urls[n % 2], n) for n in range(count)]
        calls += [debit(urls[(n + 1) % 2], n) for n in range(50)]
        return list(await asyncio.gather(*calls))


def test_concurrent_debits_through_both_replicas_end_exact_and_apply_each_key_once(
    topology: Topology,
) -> None:
    a, b = topology.urls
    key = _server_key(topology.env)
    customer = "host-user-" + secrets.token_hex(4)
    auth = {"Authorization": f"Bearer {key}"}
    made = httpx.put(
        f"{a}/api/v1/customers/{customer}", json={"email": f"{customer}@example.com"}, headers=auth
    )
    assert made.status_code == 201, made.text
    granted = httpx.post(
        f"{b}/api/v1/customers/{customer}/grants",
        json={"asset": "coins", "units": 180, "reason": "topology test"},
        headers={**auth, "Idempotency-Key": "grant-1"},
    )
    assert granted.status_code == 201, granted.text

    answers = asyncio.run(_debit_through_both(topology.urls, key, customer, 200))

    by_key: dict[str, list[httpx.Response]] = {}
    for response in answers:
        by_key.setdefault(response.request.headers["Idempotency-Key"], []).append(response)
    firsts = Counter()
    for idem, pair in by_key.items():
        original = [r for r in pair if r.headers.get("Idempotent-Replayed") != "true"]
        assert len(original) == 1, (idem, [(r.status_code, dict(r.headers)) for r in pair])
        assert {r.content for r in pair} == {original[0].content}, idem  # a replay is the first answer
        firsts[original[0].status_code] += 1
    assert firsts == Counter({201: 180, 402: 20}), firsts
    debit_ids = [r.json()["id"] for r in answers if r.status_code == 201]
    assert len(set(debit_ids)) == 180  # one entry per key, whichever replica answered
    # Both replicas did real work.
    served = Counter(str(r.request.url).split("/api/")[0] for r in answers)
    assert served[a] > 50
    assert served[b] > 50

    for url in topology.urls:
        balance = httpx.get(f"{url}/api/v1/customers/{customer}", headers=auth).json()["balances"]["coins"]
        assert (balance["available"], balance["reserved"], balance["debt"]) == (0, 0, 0)
    [entries] = run_sql(
        topology.settings,
        "SELECT count(*) AS n, sum(e.units) AS units FROM ledger_entry e"
        " JOIN user_account u ON u.id = e.user_id WHERE u.external_id = :customer AND e.kind = 'debit'",
        customer=customer,
    )
    assert (entries["n"], entries["units"]) == (180, -180)
