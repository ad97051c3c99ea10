"""Host API throughput: debits, buyer-key verifies, a hot customer's debits, balance reads.

1. A fresh database migrated to head (SQLite WAL ``synchronous=FULL``, or with ``--database``
   a new PostgreSQL database, dropped afterwards); ``--customers`` customers inserted with a
   large promotional grant each (through ``app.money.credits.credit``), one server key, and for
   ``verify`` one buyer key per customer.
2. ``uvicorn app.asgi:app`` with ``--workers`` workers, production settings, Redis for the
   shared per-key rate counters (``--no-redis``: the database counter) and a rate limit above
   what the run can reach.
3. A 2 s warm-up, then ``wrk -t1 -c<connections> -d10s`` with a Lua script:

   * ``debits``: ``POST /api/v1/customers/c<i>/debits`` ``{"asset": "coins", "units": 1}``, the
     customers in turn (distinct customers: the per-row locks never meet);
   * ``verify``: ``POST /api/v1/keys/verify`` ``{"key": <buyer key i>, "cost": 1}``;
   * ``hot``: every debit on customer ``c1``;
   * ``balance``: ``GET /api/v1/customers/c<i>``.

   Every 2xx of a change is sent after its COMMIT (the money writer's group commit).
4. Checked afterwards: no non-2xx; the number of debit entries equals the 2xx answered (give or
   take the requests wrk cut off in flight), every balance exact (``check_invariant`` and
   ``check_credits`` empty), none negative.

Targets (issue 9): debits and verifies, SQLite, one worker, c32: >= 5,000/s, p99 <= 10 ms; hot
customer, PostgreSQL, two workers, c64: >= 1,500/s, final balance exact; balance reads, one
worker: >= 10,000/s.

Run: ``.venv/bin/python bench/credits_bench.py --mode debits|verify|hot|balance
[--workers N] [--connections C] [--database postgresql://postgres@127.0.0.1:5432/test]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import ROOT, WRK, cpu_seconds, free_port, stop, temp_dir, uvicorn_command, wait_for
from webhook_bench import bench_database, production_env

WARMUP_SECONDS = 2
GRANT = 10**12

LUA = r"""
local mode = os.getenv("BENCH_MODE")
local count = tonumber(os.getenv("BENCH_COUNT"))
local keys = {}
if mode == "verify" then
  for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
end
local i = 0
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_SERVER_KEY")
wrk.headers["Content-Type"] = "application/json"

request = function()
  i = i % count + 1
  if mode == "debits" then
    return wrk.format("POST", "/api/v1/customers/c" .. i .. "/debits", nil, '{"asset":"coins","units":1}')
  elseif mode == "hot" then
    return wrk.format("POST", "/api/v1/customers/c1/debits", nil, '{"asset":"coins","units":1}')
  elseif mode == "verify" then
    return wrk.format("POST", "/api/v1/keys/verify", nil, '{"key":"' .. keys[i] .. '","cost":1}')
  else
    return wrk.format("GET", "/api/v1/customers/c" .. i, nil, nil)
  end
end

done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d non2xx=%d errors=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _engine_run(database_url: str, work: Any) -> Any:
    from app.db.config import make_engine
    from app.settings import Settings

    async def go() -> Any:
        engine = make_engine(Settings.from_env())
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def seed(database_url: str, customers: int, with_keys: bool, tmp: Path) -> tuple[str, Path]:
    """Customers c1..cN with a large grant each, one server key; buyer keys when asked."""
    from sqlalchemy import insert

    from app.accounts.models import User
    from app.api.keys import create_key
    from app.buyer_keys.service import create_key as create_buyer_key
    from app.money.credits import credit
    from app.money.models import LotKind

    keys_file = tmp / "keys.txt"

    def work(conn: Any) -> str:
        server = create_key(conn, name="bench", scopes=("read", "spend", "grant"), live=False)
        rows = [
            {"email": f"c{i}@bench.invalid", "password_hash": "!", "external_id": f"c{i}"}
            for i in range(1, customers + 1)
        ]
        ids = [row[0] for row in conn.execute(insert(User).returning(User.id), rows)]
        buyer_keys = []
        for user_id in ids:
            for asset in ("coins", "quota"):
                credit(
                    conn,
                    user_id=user_id,
                    asset=asset,
                    units=GRANT,
                    kind="grant",
                    lot_kind=LotKind.PROMOTIONAL,
                    key=f"bench:{user_id}:{asset}",
                    reason="bench",
                )
            if with_keys:
                buyer_keys.append(create_buyer_key(conn, user_id=user_id, asset="quota", name="bench").secret)
        keys_file.write_text("\n".join(buyer_keys) + "\n")
        return server.key

    return str(_engine_run(database_url, work)), keys_file


def check(database_url: str) -> tuple[list[str], int]:
    from sqlalchemy import func, select

    from app.money.credits import check_credits
    from app.money.ledger import check_invariant
    from app.money.models import Balance, LedgerEntry

    def work(conn: Any) -> tuple[list[str], int]:
        problems = check_invariant(conn) + check_credits(conn)
        negative = conn.execute(
            select(func.count()).select_from(Balance).where(Balance.available < 0)
        ).scalar()
        if negative:
            problems.append(f"{negative} negative balances")
        debits = conn.execute(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "debit")
        ).scalar()
        return problems, int(debits)

    result: tuple[list[str], int] = _engine_run(database_url, work)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("debits", "verify", "hot", "balance"), default="debits")
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=0, help="default: 64 for hot, else 32")
    parser.add_argument("--workers", type=int, default=0, help="default: 2 for hot, else 1")
    parser.add_argument("--database", default="", help="a PostgreSQL server URL; default a SQLite file")
    parser.add_argument("--no-redis", action="store_true", help="rate counters in the database")
    args = parser.parse_args()
    connections = args.connections or (64 if args.mode == "hot" else 32)
    workers = args.workers or (2 if args.mode == "hot" else 1)

    with temp_dir() as tmp_name, bench_database(Path(tmp_name), args.database) as database_url:
        tmp = Path(tmp_name)
        port = free_port()
        env = production_env(
            tmp, database_url, "whsec_" + secrets.token_hex(24), "https://shop.bench.invalid"
        )
        env.update(
            STOREFRONT_API_RATE_PER_MINUTE=str(10**9),
            STOREFRONT_HOST_WEBHOOKS_DELIVER="0",
            STOREFRONT_EXPIRY_INTERVAL="0",
        )
        if not args.no_redis:
            env["STOREFRONT_REDIS_URL"] = f"redis://127.0.0.1:6379/{secrets.randbelow(8) + 8}"
        os.environ.update(env)

        from app.db.migrate import upgrade
        from app.settings import Settings

        upgrade(Settings.from_env())
        started = time.monotonic()
        server_key, keys_file = seed(database_url, args.customers, args.mode == "verify", tmp)
        print(f"seeded {args.customers} customers in {time.monotonic() - started:.1f}s")
        server = subprocess.Popen(uvicorn_command(port, workers), cwd=ROOT, env=env)
        script = tmp / "credits.lua"
        script.write_text(LUA)
        lua_env = {
            **env,
            "BENCH_MODE": args.mode,
            "BENCH_COUNT": str(args.customers),
            "BENCH_KEYS": str(keys_file),
            "BENCH_SERVER_KEY": server_key,
        }
        try:
            wait_for(f"http://127.0.0.1:{port}/healthz", server)

            def run_wrk(seconds: int) -> tuple[list[str], str]:
                command = [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
                command += ["-s", str(script), f"http://127.0.0.1:{port}"]
                run = subprocess.run(command, capture_output=True, text=True, check=True, env=lua_env)
                return command, run.stdout

            _, warm = run_wrk(WARMUP_SECONDS)
            cpu_before = cpu_seconds(server.pid)
            command, out = run_wrk(args.seconds)
            server_cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            stop(server)

        found = re.search(
            r"BENCH requests=(\d+) non2xx=(\d+) errors=(\d+) duration_us=(\d+) "
            r"p50_us=(\d+) p99_us=(\d+) max_us=(\d+)",
            out,
        )
        warm_found = re.search(r"BENCH requests=(\d+) non2xx=(\d+)", warm)
        if not found or not warm_found:
            print(out, warm)
            return 1
        requests, non2xx, errors, duration, p50, p99, worst = map(int, found.groups())
        answered = requests - non2xx + int(warm_found.group(1)) - int(warm_found.group(2))
        rate = requests / (duration / 1e6)
        problems, debits = check(database_url)
        if args.mode != "balance" and abs(debits - answered) > 2 * connections:
            problems.append(f"{debits} debit entries for {answered} answered changes")
        if non2xx or errors:
            problems.append(f"{non2xx} non-2xx answers, {errors} socket errors")
        where = "PostgreSQL" if args.database else "SQLite WAL, synchronous=FULL"
        counters = "database" if args.no_redis else "Redis"
        setup = f"mode {args.mode}, uvicorn {workers} worker(s), {where}, {counters} rate counters"
        print(f"command: {' '.join(command)}  ({setup})")
        print(f"answered: {requests} in {duration / 1e6:.2f}s, {non2xx} non-2xx, {errors} socket errors")
        latency = f"p50: {p50 / 1000:.2f} ms   p99: {p99 / 1000:.2f} ms   max: {worst / 1000:.2f} ms"
        print(f"req/s: {rate:,.0f}   {latency}")
        if requests and server_cpu:
            print(f"server CPU: {server_cpu / requests * 1e6:.0f} µs per request ({server_cpu:.1f} s)")
        print(
            "ledger: "
            + ("OK (entries match the answers, invariants hold, none negative)" if not problems else "FAILED")
        )
        for problem in problems:
            print("  - " + problem)
        want = {"debits": (5000, 10.0), "verify": (5000, 10.0), "hot": (1500, None), "balance": (10000, None)}
        want_rate, want_p99 = want[args.mode]
        met = rate >= want_rate and (want_p99 is None or p99 / 1000 <= want_p99)
        p99_text = f" with p99 <= {want_p99:g} ms" if want_p99 else ""
        print(f"target >= {want_rate:,}/s{p99_text}: {'met' if met else 'NOT met'}")
        return 0 if not problems and met else 1


if __name__ == "__main__":
    sys.exit(main())
