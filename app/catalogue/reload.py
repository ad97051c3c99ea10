"""Hot reload of ``pricing.toml`` without ever serving a broken catalogue.

Requests only read ``holder.catalogue`` (an attribute load, no I/O).  A
background task stats the file every ``interval`` seconds and re-reads it only
when (mtime_ns, size, inode) changed.  A valid new file is swapped in with a
single reference assignment; an invalid one is logged and ignored, keeping
the last good catalogue live.

A ``check`` (``app.checkout.prices``: every pack's ``stripe_price`` retrieved from Stripe)
may refuse a parsed catalogue exactly as a broken file is refused, at start-up
(:meth:`CatalogueHolder.verify`) and on every reload. It runs on the watcher task, never on
a request, and only a catalogue that names Stripe Prices costs a network call. When Stripe
cannot be asked (:class:`PricesUnverified`, or no answer within ``check_timeout``) the
catalogue is taken unverified, with a warning, and checked again every
``RECHECK_SECONDS``: an outage must not keep the shop down or freeze its prices, and
fulfilment still refuses to credit a session whose subtotal is not the pack's price.
A file refused only because Stripe's Prices disagreed is asked about again as often too, so
a Price fixed in Stripe's dashboard is picked up without saving the file once more.

Usage with Litestar::

    holder = CatalogueHolder()             # raises CatalogueError if invalid
    app = Litestar(..., on_startup=[holder.verify, holder.start], on_shutdown=[holder.stop])
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import structlog

from .loader import CatalogueError, default_pricing_path, file_version, parse_catalogue
from .model import Catalogue

__all__ = ["RECHECK_SECONDS", "CatalogueHolder", "Listener", "PriceCheck", "PricesUnverified"]

# Called with the new catalogue after each successful swap; may be async.
Listener: TypeAlias = Callable[[Catalogue], Awaitable[None] | None]
# Problems with a parsed catalogue that only Stripe can tell (its Prices); [] when all agree.
PriceCheck: TypeAlias = Callable[[Catalogue], Awaitable[Sequence[str]]]

RECHECK_SECONDS = 30.0
"""How often an unverified catalogue's Prices are asked for again (not every poll: an outage)."""


class PricesUnverified(Exception):
    """Stripe could not be asked about the catalogue's Prices (unreachable, busy)."""


_StatKey: TypeAlias = tuple[int, int, int]

# Filesystem timestamps are coarse (often a few ms): two same-size writes in
# one tick leave an identical stat.  A file modified this recently is re-read
# on the next poll too ("racy" stat, as git calls it); the content hash makes
# that second read a no-op when nothing changed.
_RACY_NS = 1_000_000_000

log = structlog.get_logger(__name__)


def _stat_key(path: Path) -> _StatKey:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _settled(key: _StatKey) -> _StatKey | None:
    """``key`` if the file is old enough for its stat to be trusted, else None."""
    return key if time.time_ns() - key[0] >= _RACY_NS else None


class CatalogueHolder:
    """Owns the live catalogue and keeps it in step with the file."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        interval: float = 0.5,
        check: PriceCheck | None = None,
        check_timeout: float = 5.0,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        """Load the file now: the app must not start on a broken catalogue.

        Raises ``CatalogueError`` (every problem listed) if the file is invalid. ``check`` is
        asked in :meth:`verify` (start-up) and before every swap.
        """
        self.path = Path(path) if path is not None else default_pricing_path()
        self.interval = interval
        self._check = check
        self._check_timeout = check_timeout
        self._recheck_seconds = recheck_seconds
        self._unverified = False
        """The live catalogue's Prices could not be asked about."""
        self._disagrees = False
        """A recheck found Stripe contradicting the live catalogue (nothing better to serve)."""
        self._refused: Catalogue | None = None
        """The file's catalogue, valid but refused by the Price check: taken once Stripe agrees."""
        self._asked_at = time.monotonic()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._problems: tuple[str, ...] = ()
        self._missing = False
        self._stat = _settled(_stat_key(self.path)) if self.path.exists() else None
        data = self._read_or_raise()
        self._catalogue = parse_catalogue(data, source=str(self.path))
        self.loaded_at = time.time()
        """Unix time the live catalogue was swapped in (the admin console's "last reload")."""
        log.info("catalogue.loaded", path=str(self.path), version=self._catalogue.version)

    def _read_or_raise(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            msg = f"file: cannot read {self.path}: {exc.strerror or exc}"
            raise CatalogueError([msg], str(self.path)) from exc

    # --- read side: cheap, no I/O ------------------------------------------

    @property
    def catalogue(self) -> Catalogue:
        """The last valid catalogue."""
        return self._catalogue

    @property
    def version(self) -> str:
        return self._catalogue.version

    @property
    def problems(self) -> list[str]:
        """Problems from the last failed reload; empty while the file matches ``catalogue``."""
        return list(self._problems)

    # --- listeners -----------------------------------------------------------

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(new_catalogue)`` after every successful swap.

        Returns a function that unsubscribes.  A failing listener is logged and
        does not stop the others or the reload.
        """
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    async def _notify(self, catalogue: Catalogue) -> None:
        for callback in list(self._listeners):
            try:
                result: Any = callback(catalogue)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("catalogue.listener_failed", listener=repr(callback), version=catalogue.version)

    @property
    def verified(self) -> bool:
        """False while the live catalogue's Prices could not be checked with Stripe."""
        return not self._unverified

    # --- Stripe's Prices -------------------------------------------------------

    async def _checked(self, catalogue: Catalogue) -> list[str] | None:
        """The check's problems with ``catalogue``; None if Stripe could not be asked."""
        if self._check is None:
            return []
        self._asked_at = time.monotonic()
        try:
            return list(await asyncio.wait_for(self._check(catalogue), self._check_timeout))
        except (PricesUnverified, TimeoutError) as exc:
            log.warning(
                "catalogue.prices_unverified",
                path=str(self.path),
                version=catalogue.version,
                error=str(exc) or type(exc).__name__,
            )
            return None

    async def verify(self) -> None:
        """Start-up: refuse to serve Prices Stripe contradicts (raises ``CatalogueError``).

        Stripe unreachable: start anyway, unverified (see the module docstring).
        """
        problems = await self._checked(self._catalogue)
        if problems:
            raise CatalogueError(problems, str(self.path))
        self._unverified = problems is None

    async def _recheck(self) -> None:
        """Ask Stripe again, at most every ``recheck_seconds``, while its answer can change things.

        That is while a refused file waits for its Prices to be fixed in Stripe (then it is
        swapped in), or the live catalogue is unverified or contradicted by Stripe.
        """
        if self._refused is None and not self._unverified and not self._disagrees:
            return
        if time.monotonic() - self._asked_at < self._recheck_seconds:
            return
        if self._refused is not None:
            waiting = self._refused
            problems = await self._checked(waiting)
            if problems == []:
                log.info("catalogue.prices_fixed", path=str(self.path), version=waiting.version)
                await self._swap(waiting, verified=True)
            elif problems:
                self._problems = tuple(problems)
            return
        problems = await self._checked(self._catalogue)
        if problems is None:
            return
        self._unverified, self._disagrees = False, bool(problems)
        if problems:
            # Nothing better to serve: the last good file is this one. Say so where reloads are seen.
            self._problems = tuple(problems)
            for problem in problems:
                log.error("catalogue.prices_disagree", path=str(self.path), problem=problem)
        else:
            self._problems = ()
            log.info("catalogue.prices_verified", path=str(self.path), version=self._catalogue.version)

    # --- reload side ---------------------------------------------------------

    async def refresh(self) -> bool:
        """Reload if the file's stat changed; True if a new catalogue was swapped in.

        The watcher calls this every ``interval``; tests and admin hooks may call
        it directly to avoid waiting.
        """
        try:
            key = _stat_key(self.path)
        except OSError as exc:
            # Editors may briefly remove the file while saving; keep serving.
            if not self._missing:  # log once, not every poll
                log.warning("catalogue.file_missing", path=str(self.path), error=str(exc))
            self._missing, self._stat, self._refused = True, None, None
            self._problems = (f"file: cannot read {self.path}: {exc.strerror or exc}",)
            return False
        self._missing = False
        if key == self._stat:
            await self._recheck()
            return False
        # Record the stat seen *before* reading: if the file changes again
        # mid-read, the next poll sees a newer stat and reloads once more.
        self._stat = _settled(key)
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except OSError as exc:
            self._refused = None
            self._problems = (f"file: cannot read {self.path}: {exc.strerror or exc}",)
            log.warning("catalogue.reload_failed", path=str(self.path), problem=self._problems[0])
            return False
        return await self._apply(data)

    async def _apply(self, data: bytes) -> bool:
        """Swap in the file's new content if it parses and Stripe does not contradict its Prices."""
        self._refused = None
        if file_version(data) == self._catalogue.version:
            # Touched or reverted to the live content: nothing to swap (what Stripe said of it stays).
            if self._problems and not self._disagrees:
                log.info("catalogue.recovered", path=str(self.path), version=self._catalogue.version)
                self._problems = ()
            return False
        try:
            new = parse_catalogue(data, source=str(self.path))
        except CatalogueError as exc:
            self._refuse(exc.problems)
            return False
        problems = await self._checked(new)
        if problems:
            self._refused = new
            self._refuse(tuple(problems))
            return False
        await self._swap(new, verified=problems is not None)
        return True

    def _refuse(self, problems: tuple[str, ...]) -> None:
        self._problems = problems
        for problem in problems:
            log.error("catalogue.reload_failed", path=str(self.path), problem=problem, serving=self.version)

    async def _swap(self, new: Catalogue, *, verified: bool) -> None:
        """Make ``new`` the live catalogue and tell the listeners."""
        old, self._catalogue, self._problems, self._refused = self._catalogue.version, new, (), None
        self._unverified, self._disagrees = not verified, False
        self.loaded_at = time.time()
        log.info("catalogue.reloaded", path=str(self.path), version=new.version, previous=old)
        await self._notify(new)

    async def watch(self, interval: float | None = None) -> None:
        """Poll the file forever; run as a task (see ``start``)."""
        period = self.interval if interval is None else interval
        while True:
            await asyncio.sleep(period)
            try:
                await self.refresh()
            except Exception:
                # Never let an unexpected error kill the watcher silently.
                log.exception("catalogue.watch_error", path=str(self.path))

    async def start(self) -> None:
        """Start the watcher task (idempotent). Takes no arguments so Litestar
        calls it as a plain ``on_startup`` hook."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.watch(), name=f"catalogue-watch:{self.path}")

    async def stop(self) -> None:
        """Cancel the watcher and wait for it to finish."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()
