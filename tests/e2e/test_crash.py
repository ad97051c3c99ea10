"""The shop is killed (SIGKILL) while webhooks pour in, then restarted: nothing lost, nothing doubled.

The shop runs as a real uvicorn subprocess on a file SQLite database; the sandbox keeps
retrying failed deliveries, which is all the recovery there is (no reconcile here).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.settings import PROJECT_ROOT
from tests.conftest import make_settings, migrate
from tests.support.sandbox_server import TEST_KEY, start_sandbox
from tests.support.servers import free_port
from tests.support.shop import Shop, run_sql, sandbox_config, wait_for


@contextmanager
def shop_process(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _answers(port), timeout=30, interval=0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _failed(attempt: dict[str, object]) -> bool:
    status = attempt["status"]
    return status is None or (isinstance(status, int) and status >= 500)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigkill_while_handling_webhooks_loses_and_doubles_nothing(tmp_path: Path) -> None:
    port = free_port()
    shop_url = f"http://127.0.0.1:{port}"
    whsec = "whsec_" + secrets.token_hex(16)
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    config = sandbox_config(shop_url, whsec, retry_time_scale=0.1, max_delivery_attempts=12)
    with start_sandbox(config) as sandbox:
        settings = make_settings(
            tmp_path,
            db_url,
            base_url=shop_url,
            stripe_api_base=sandbox.url,
            stripe_secret_key=TEST_KEY,
            stripe_webhook_secrets=(whsec,),
        )
        migrate(settings)
        env = {
            **os.environ,
            "STOREFRONT_DATABASE_URL": db_url,
            "STOREFRONT_BASE_URL": shop_url,
            "STOREFRONT_STRIPE_API_BASE": sandbox.url,
            "STRIPE_SECRET_KEY": TEST_KEY,
            "STRIPE_WEBHOOK_SECRET": whsec,
            "STOREFRONT_SECRET_KEY": settings.secret_key,
            "STOREFRONT_VAR_DIR": str(tmp_path / "var"),
            "STOREFRONT_RECONCILE_INTERVAL": "0",
        }
        log = tmp_path / "shop.log"
        shop = Shop(url=shop_url, settings=settings, sandbox=sandbox)
        with shop_process(env, port, log) as proc:
            # One of each pack per buyer: a second ask for a still-open pack reuses its session.
            buyers = [shop.buyer().sign_up() for _ in range(20)]
            sessions = [
                (buyers[i // 2], buyers[i // 2].start("coins-500" if i % 2 else "coins-100"))
                for i in range(40)
            ]
            # Pay half, kill the shop mid-stream (deliveries in flight), pay the rest while it is down.
            for _buyer, sid in sessions[:20]:
                assert shop.pay(sid)["status"] == "succeeded"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            for _buyer, sid in sessions[20:]:
                assert shop.pay(sid)["status"] == "succeeded"
        # Some deliveries fail against the dead port before the shop comes back.
        wait_for(lambda: any(_failed(a) for a in sandbox.control("GET", "deliveries")["data"]), timeout=30)
        with shop_process(env, port, log):
            assert sandbox.flush(60)
            wait_for(lambda: len(run_sql(settings, "SELECT id FROM ledger_entry")) >= 40, timeout=30)
            sandbox.flush(30)
            expected: dict[int, int] = {}
            for _buyer, sid in sessions:
                uid = int(shop.order(sid)["user_id"])
                expected[uid] = expected.get(uid, 0) + (
                    550 if shop.order(sid)["pack_id"] == "coins-500" else 100
                )
            entries = run_sql(settings, "SELECT order_id, kind, units FROM ledger_entry")
            assert len(entries) == 40
            assert len({e["order_id"] for e in entries}) == 40
            balances = run_sql(settings, "SELECT user_id, available FROM balance WHERE asset = 'coins'")
            assert {b["user_id"]: b["available"] for b in balances} == expected
            statuses = {row["status"] for row in run_sql(settings, "SELECT status FROM purchase_order")}
            assert statuses == {"paid"}
            attempts = sandbox.control("GET", "deliveries")["data"]
            assert any(_failed(a) for a in attempts), "no delivery ever failed"
            assert any(a["attempt"] > 1 and a["status"] == 200 for a in attempts), "no retry ever succeeded"
