"""The pages work under their Content-Security-Policy in Chromium: htmx loads without injecting
its ``<style>``, the sandbox's hosted card form keeps its (hashed) inline style, and the
violation watcher of the ``page`` fixture really sees a violation."""

from __future__ import annotations

from typing import Any

import pytest

from app.settings import Settings
from app.web.factory import create_app
from tests.conftest import CSP_WATCH, csp_violations
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.browser


def test_pages_and_htmx_run_under_the_policy(page: Any, sqlite_settings: Settings) -> None:
    with serve_in_thread(create_app(sqlite_settings)) as url:
        for path in ("/", "/sign-in", "/sign-up", "/sandbox/c/pay/cs_test_missing", "/no/such/page"):
            response = page.goto(url + path)
            assert response is not None
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert csp_violations(page) == [], path
        page.goto(url + "/")
        page.wait_for_function("window.htmx !== undefined")
        assert page.evaluate("htmx.config.includeIndicatorStyles") is False
        styles = page.evaluate("[...document.querySelectorAll('style')].length")
        assert styles == 0, "htmx injected a <style> the policy would refuse"
        page.goto(url + "/sandbox/c/pay/cs_test_missing")
        banner = page.get_by_test_id("sandbox-banner")
        assert banner.evaluate("el => getComputedStyle(el).fontWeight") == "600", "inline style applied"


def test_the_watcher_sees_a_violation(browser: Any, sqlite_settings: Settings) -> None:
    """A positive control: an inline script the policy refuses is reported."""
    context = browser.new_context()
    try:
        context.add_init_script(CSP_WATCH)
        tab = context.new_page()
        with serve_in_thread(create_app(sqlite_settings)) as url:
            tab.goto(url + "/")
            tab.evaluate("""() => { const s = document.createElement('script');
                s.textContent = 'window.__ran = 1'; document.body.appendChild(s); }""")
            tab.wait_for_function("window.__cspViolations.length > 0")
            assert tab.evaluate("window.__ran") is None
            assert any("script-src" in v for v in tab.evaluate("window.__cspViolations"))
    finally:
        context.close()
