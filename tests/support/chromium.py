"""One Playwright driver and headless Chromium kept alive across consecutive browser tests.

Starting Playwright's driver (a Node process) and Chromium costs ~1 s of CPU and 1-3 s of
wall time; the suite has dozens of browser tests. Playwright's sync API marks its event loop
as running in this thread while it is alive, which breaks ``asyncio.run`` in tests that do
not expect a browser, so the keeper stops it as soon as the next test on this worker does
not ask for one, and between two browser tests it is *parked*: the loop is unmarked, so the
next test's other fixtures may still call ``asyncio.run`` (Playwright marks it again itself after
each call; ``get`` marks it before handing the browser back). Each test still gets a browser
with no context of an earlier test left open.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ChromiumKeeper:
    def __init__(self, args: list[str]) -> None:
        self._args = args
        self._manager: Any = None
        self._browser: Any = None

    def _unpark(self) -> None:
        if self._manager is not None:
            asyncio._set_running_loop(self._manager._loop)

    def get(self, executable: str) -> Any:
        """The running browser, started (again) when there is none or it died."""
        self._unpark()
        if self._browser is not None and not self._browser.is_connected():
            self.stop()
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._manager = sync_playwright()
            playwright = self._manager.__enter__()
            try:
                self._browser = playwright.chromium.launch(
                    executable_path=executable, headless=True, args=self._args
                )
            except BaseException:
                self.stop()
                raise
        return self._browser

    def release(self, *, keep: bool) -> None:
        """After a test: close what it left open, and stop unless ``keep``."""
        if self._browser is None:
            return
        if not keep:
            self.stop()
            return
        try:
            for context in list(self._browser.contexts):
                context.close()
        except Exception:  # a browser that broke in the test is started afresh
            self.stop()
            return
        asyncio._set_running_loop(None)  # parked until the next ``get``

    def stop(self) -> None:
        self._unpark()
        browser, manager = self._browser, self._manager
        self._browser = self._manager = None
        try:
            if browser is not None and browser.is_connected():
                browser.close()
        finally:
            if manager is not None:
                manager.__exit__(None, None, None)
