"""Throughput of the success page's status poll for an order that is already credited.

Every waiting buyer polls ``/checkout/status/<order>`` once a second, and keeps doing so until
the answer is final, so the final answer must be cheap. The shop runs the production way
(``app.web.serve.serve``, ONE worker) on a fresh SQLite database; a buyer signs up over HTTP
(a real session cookie), a credited order is written straight into the database (the poll
path is what is measured, not Stripe), and ``wrk`` polls with that cookie.

Target: >= 5,000 req/s on one worker, every answer the final 286.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, free_port, shop_env, stop, temp_dir, wait_for, wrk

SECONDS = 10
MIGRATE = "from app.db.migrate import upgrade; from app.settings import get_settings; upgrade(get_settings())"
TARGET = 5_000


def start_shop(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-c",
        f"from app.web.serve import serve; serve(host='127.0.0.1', port={port}, workers=1)",
    ]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=shop_env(tmp, port), stdout=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
    return proc


def signed_in_cookie(base: str) -> tuple[str, int]:
    """Sign up a buyer; returns the session cookie and the user id."""
    with httpx.Client(base_url=base) as client:
        client.get("/sign-up")
        token = client.cookies["csrftoken"]
        response = client.post(
            "/sign-up",
            data={"email": "bench@example.com", "password": "bench password 1", "_csrf_token": token},
        )
        assert response.status_code == 303, response.status_code
        return client.cookies["session"], 1


def credited_order(db: Path, user_id: int) -> int:
    """A paid order and its credit, as fulfilment would have written them."""
    with sqlite3.connect(db) as conn:
        cur = conn.execute(
            "INSERT INTO purchase_order (user_id, pack_id, pack_name, asset, units, bonus, amount,"
            " currency, locale, status, stripe_session_id, stripe_payment_intent_id, fulfilled_at,"
            " created_at, updated_at)"
            " VALUES (?, 'coins-500', 'Bag of coins', 'coins', 500, 50, 499, 'USD', 'en', 'paid', 'cs_bench',"
            " 'pi_bench', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            (user_id,),
        )
        order_id = int(cur.lastrowid or 0)
        conn.execute(
            "INSERT INTO ledger_entry (user_id, asset, kind, units, held_units, balance_after, held_after,"
            " order_id, amount, idempotency_key, reason, created_at)"
            " VALUES (?, 'coins', 'purchase', 550, 0, 550, 0, ?, 499, 'fulfil:cs_bench', 'bench',"
            " CURRENT_TIMESTAMP)",
            (user_id, order_id),
        )
        conn.execute(
            "INSERT INTO balance (user_id, asset, available, held) VALUES (?, 'coins', 550, 0)", (user_id,)
        )
    return order_id


def main() -> int:
    with temp_dir() as name:
        tmp = Path(name)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        subprocess.run(
            [sys.executable, "-c", MIGRATE],
            cwd=ROOT, env=shop_env(tmp, port), check=True,
        )  # fmt: skip
        shop = start_shop(tmp, port)
        try:
            cookie, user_id = signed_in_cookie(base)
            order_id = credited_order(tmp / "bench.db", user_id)
            url = f"{base}/checkout/status/{order_id}?lang=en"
            first = httpx.get(url, cookies={"session": cookie})
            print(f"first answer: {first.status_code}, {len(first.content)} bytes", flush=True)
            assert first.status_code == 286, first.text[:300]
            assert "We added 550 coins" in first.text
            other = httpx.get(url)
            assert other.status_code == 401, other.status_code
            headers = (f"Cookie: session={cookie}", "HX-Request: true")
            wrk(url, seconds=2, headers=headers)  # warm-up
            result = wrk(url, seconds=SECONDS, headers=headers)
            print(f"--- {result['command']}")
            print(textwrap.indent(result["output"].rstrip(), "    "))
        finally:
            stop(shop)
    rps = float(result["rps"])
    # 286 is a 2xx status for wrk: any "Non-2xx" or socket error line means something else came back.
    errors = f"  [{result['errors']}]" if result["errors"] else ""
    print(
        f"\nstatus poll (final order, 1 worker): {rps:,.0f} req/s"
        f"  p50 {result['p50']}  p99 {result['p99']}{errors}"
    )
    ok = rps >= TARGET and not result["errors"]
    print(f"target (>= {TARGET:,} req/s on one worker):", "MET" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
