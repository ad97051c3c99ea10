"""Webhook delivery: signed POSTs to each endpoint from a background task, retried with backoff.

Signing follows Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">` keyed by the
whole `whsec_...` secret. A seeded chaos mode duplicates, delays, reorders or drops deliveries so the
shop's handlers are exercised against everything Stripe's at-least-once delivery allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import hmac
import itertools
import random
import time
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import httpx
import msgspec

from .config import ChaosConfig
from .state import SandboxState

_encoder = msgspec.json.Encoder()


def sign(payload: str, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass
class Job:
    event_id: str
    url: str
    secret: str
    attempt: int = 0
    duplicate: bool = False
    drop_first: bool = False


class DeliveryWorker:
    """Owns the delivery queue; `wait_idle()` lets tests wait until every delivery has settled."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.config = state.config
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._outstanding = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self.paused = False
        self.chaos: ChaosConfig | None = None
        self._rng = random.Random(0)
        self.chaos_log: list[dict[str, Any]] = []
        self.set_chaos(self.config.chaos)
        state.on_event(self.enqueue)

    def set_chaos(self, chaos: ChaosConfig | None) -> None:
        self.chaos = chaos
        self._rng = random.Random(chaos.seed if chaos else 0)
        self.chaos_log = []

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def enqueue(self, event_id: str) -> None:
        event = self.state.events.by_id[event_id]
        for url, secret in self.state.endpoints:
            job = Job(event_id, url, secret)
            delay = 0.0
            if self.chaos is not None:
                delay = self._plan(job, event["type"])
            self._push(job, delay)
            if job.duplicate:
                self._push(Job(event_id, url, secret, duplicate=True), delay + 0.001)
                job.duplicate = False

    def _plan(self, job: Job, event_type: str) -> float:
        """Draw this delivery's chaos from the seeded RNG, always in the same order."""
        chaos = self.chaos
        assert chaos is not None
        rng = self._rng
        duplicate = rng.random() < chaos.duplicate
        reorder = rng.random() < chaos.reorder
        delayed = rng.random() < chaos.delay
        drop = rng.random() < chaos.drop
        amount = rng.uniform(0, chaos.max_delay)
        delay = (amount if delayed else 0.0) + (chaos.max_delay if reorder else 0.0)
        job.duplicate = duplicate
        job.drop_first = drop
        self.chaos_log.append(
            {
                "n": len(self.chaos_log),
                "event_type": event_type,
                "endpoint": job.url,
                "duplicate": duplicate,
                "reorder": reorder,
                "delay": round(delay, 6),
                "drop": drop,
            }
        )
        return delay

    def _push(self, job: Job, delay: float) -> None:
        try:
            ready = self._loop_time() + delay
        except RuntimeError:  # no running loop (sync Python API use before start): deliver ASAP
            ready = delay
        heapq.heappush(self._heap, (ready, next(self._seq), job))
        self._outstanding += 1
        self._idle.clear()
        self._wake.set()

    def _done(self) -> None:
        self._outstanding -= 1
        if self._outstanding == 0:
            self._idle.set()

    async def start(self) -> None:
        if self._tasks:
            return
        self._client = httpx.AsyncClient(timeout=self.config.delivery_timeout)
        # Re-queue deliveries a previous process left unfinished (state file restarts).
        for event_id, statuses in self.state.delivery_status.items():
            for url, status in statuses.items():
                secret = next((s for u, s in self.state.endpoints if u == url), None)
                if (
                    status == "pending"
                    and secret is not None
                    and not any(j.event_id == event_id and j.url == url for _, _, j in self._heap)
                ):
                    self._push(Job(event_id, url, secret), 0.0)
        self._tasks = [
            asyncio.create_task(self._work(), name=f"sandbox-delivery-{i}")
            for i in range(max(1, self.config.delivery_concurrency))
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    async def wait_idle(self, max_wait: float | None = 30.0) -> bool:
        """True once nothing is queued, in flight or waiting for a retry."""
        try:
            await asyncio.wait_for(self._idle.wait(), max_wait)
        except TimeoutError:
            return False
        return True

    async def _next(self) -> Job:
        while True:
            delay: float | None = None
            if not self.paused and self._heap:
                delay = self._heap[0][0] - self._loop_time()
                if delay <= 0:
                    return heapq.heappop(self._heap)[2]
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _work(self) -> None:
        while True:
            job = await self._next()
            try:
                await self._send(job)
            except Exception as exc:  # a bug here must not kill the worker; record it as a failure
                self._record(job, None, f"internal error: {exc!r}", 0.0)
                self._done()

    async def _send(self, job: Job) -> None:
        job.attempt += 1
        event = self.state.events.by_id.get(job.event_id)
        if event is None:
            self._done()
            return
        if job.drop_first and job.attempt == 1:
            self._record(job, None, "dropped by chaos mode", 0.0)
            self._after_failure(job)
            return
        payload = _encoder.encode(self.state.event_view(event)).decode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, job.secret, int(time.time())),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        assert self._client is not None
        try:
            response = await self._client.post(
                job.url, content=payload, headers=headers, timeout=self.config.delivery_timeout
            )
            status = response.status_code
        except httpx.TimeoutException:
            error = "timed out"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._record(job, status, error, time.perf_counter() - started)
        if status is not None and 200 <= status < 300:
            if not job.duplicate:
                self.state.settle_delivery(job.event_id, job.url, "succeeded")
            self._done()
        else:
            self._after_failure(job)

    def _after_failure(self, job: Job) -> None:
        if job.attempt < self.config.max_delivery_attempts:
            delay = self.config.retry_base_delay * (2 ** (job.attempt - 1)) * self.config.retry_time_scale
            heapq.heappush(self._heap, (self._loop_time() + delay, next(self._seq), job))
            self._wake.set()
            return
        if not job.duplicate:
            self.state.settle_delivery(job.event_id, job.url, "failed")
        self._done()

    def _record(self, job: Job, status: int | None, error: str | None, elapsed: float) -> None:
        self.state.delivery_attempts.append(
            {
                "event": job.event_id,
                "endpoint": job.url,
                "attempt": job.attempt,
                "status": status,
                "error": error,
                "duplicate": job.duplicate,
                "at": time.time(),
                "elapsed": round(elapsed, 6),
            }
        )
        self.state.mark_dirty()
