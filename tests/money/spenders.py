"""Processes of concurrent spenders, for the PostgreSQL races of ``test_debit_concurrency``.

Run as ``python -m tests.money.spenders``, it reads one JSON job per line on stdin. For each it
opens its own async engine, warms its pool, prints ``ready``, waits for a ``go`` line (so the
processes start together), runs ``count`` spends at once, each in its own transaction, and
prints one JSON line: the outcomes and when the spending started and ended. One process
serves many jobs: importing the app is slow.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.db.sql import run
from app.money.credits import Insufficient, debit, place_hold

POOL = 15
"""Connections per process: both processes together stay well under the server's 100."""


async def spend_once(sessions: async_sessionmaker[AsyncSession], job: dict[str, Any], index: int) -> str:
    """One spend in its own transaction: ``ok``, ``none`` (key used), ``insufficient`` or an error."""
    key = job["key"] if job.get("same_key") else f"{job['key']}:{index}"
    try:
        async with sessions() as db, db.begin():
            if job["op"] == "hold":
                done: Any = await run(
                    db,
                    place_hold,
                    user_id=job["user_id"],
                    asset=job["asset"],
                    units=job["units"],
                    expires_at=job["now"] + 3600,
                    key=key,
                    now=job["now"],
                )
            else:
                done = await run(
                    db,
                    debit,
                    user_id=job["user_id"],
                    asset=job["asset"],
                    units=job["units"],
                    key=key,
                    now=job["now"],
                )
    except Insufficient:
        return "insufficient"
    except Exception as error:  # reported to the test, which fails on it
        return f"error: {error!r}"
    return "none" if done is None else "ok"


async def spend_all(sessions: async_sessionmaker[AsyncSession], job: dict[str, Any]) -> list[str]:
    """``job['count']`` spends at once, each in its own session."""
    return list(await asyncio.gather(*(spend_once(sessions, job, i) for i in range(job["count"]))))


async def _process(job: dict[str, Any]) -> dict[str, Any]:
    """This process's engine, pool warmed, then ``ready`` and a wait for the go line."""
    engine = create_async_engine(job["url"], pool_size=POOL, max_overflow=0)
    try:
        warm = [await engine.connect() for _ in range(POOL)]
        for conn in warm:
            await conn.close()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.time()
        outcomes = await spend_all(async_sessionmaker(engine, expire_on_commit=False), job)
        return {"outcomes": outcomes, "started": started, "ended": time.time()}
    finally:
        await engine.dispose()


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(asyncio.run(_process(json.loads(line)))), flush=True)


if __name__ == "__main__":
    main()
