"""A buyer in Chromium makes an API key, sees it once, and revokes it; with and without JavaScript."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.db.migrate import upgrade
from app.web.factory import create_app
from tests.conftest import make_settings
from tests.support.servers import serve_in_thread


@pytest.fixture
def shop(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    """SQLite only: the PostgreSQL fixture cannot run beside Playwright's loop; HTTP tests cover both."""
    settings = make_settings(tmp_path, sqlite_url, stripe_api_base="http://127.0.0.1:9")
    with ThreadPoolExecutor(max_workers=1) as pool:  # migrations use asyncio.run
        pool.submit(upgrade, settings).result()
    with serve_in_thread(create_app(settings)) as base:
        yield base


def _sign_up(tab: Any, base: str, email: str) -> None:
    tab.goto(base + "/sign-up")
    tab.fill("#f-email", email)
    tab.fill("#f-password", "browser password")
    tab.click("button.primary")
    tab.wait_for_url(lambda url: "/account" in url)


def _no_horizontal_overflow(tab: Any) -> None:
    width = tab.evaluate("document.documentElement.scrollWidth")
    viewport = tab.evaluate("window.innerWidth")
    assert width <= viewport, f"the page is {width}px wide in a {viewport}px window"


@pytest.mark.browser
def test_make_a_key_see_it_once_and_revoke_it_with_htmx(shop: str, page: Any) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    _sign_up(page, shop, "keys-browser@example.com")
    section = page.locator("#api-keys")
    assert section.locator("h2").inner_text() == "API keys"
    _no_horizontal_overflow(page)
    page.fill("#k-name", "My scraper")
    page.select_option("#k-asset", "quota")
    page.fill("#k-cap", "250")
    page.select_option("#k-cap-period", "month")
    url_before = page.url
    section.locator("button.primary").click()
    secret_box = page.locator("#new-key-secret")
    secret_box.wait_for()
    secret = secret_box.input_value()
    assert secret.startswith("sk_quota_")
    assert page.url == url_before  # swapped in place by htmx, no navigation
    assert "shown only this once" in page.locator(".new-key").inner_text()
    row = page.locator("#api-keys tbody tr").first
    assert "My scraper" in row.inner_text()
    assert secret[:15] in row.inner_text()
    assert "250 per month" in row.inner_text()
    _no_horizontal_overflow(page)

    page.reload()
    assert page.locator("#new-key-secret").count() == 0
    assert secret not in page.content()

    page.locator("#api-keys button.revoke").click()
    page.locator("#api-keys tr[data-status='revoked']").wait_for()
    assert page.locator("#api-keys button.revoke").count() == 0
    assert "Revoked" in page.locator("#api-keys tbody tr").first.inner_text()
    _no_horizontal_overflow(page)


@pytest.mark.browser
def test_without_javascript_and_in_chinese(shop: str, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 800})
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        _sign_up(tab, shop, "keys-nojs@example.com")
        tab.click("a[hreflang='zh']")
        tab.wait_for_url(lambda url: "/account" in url)
        assert tab.locator("#api-keys h2").inner_text() == "API 密钥"
        tab.fill("#k-name", "")
        tab.locator("#api-keys button.primary").click()
        assert tab.locator("#ke-name").inner_text().startswith("请为密钥起一个")
        tab.fill("#k-name", "夜间任务")
        tab.locator("#api-keys button.primary").click()
        tab.wait_for_url(lambda url: url.endswith("/account#api-keys"))
        secret = tab.locator("#new-key-secret").input_value()
        assert secret.startswith("sk_coins_")  # the first asset of the catalogue is preselected
        _no_horizontal_overflow(tab)
        tab.goto(shop + "/account")
        assert tab.locator("#new-key-secret").count() == 0
        tab.locator("#api-keys button.revoke").click()
        tab.wait_for_url(lambda url: url.endswith("/account#api-keys"))
        assert tab.locator("#api-keys tr[data-status='revoked']").count() == 1
        assert "已撤销" in tab.locator("#api-keys tbody tr").first.inner_text()
    finally:
        context.close()
