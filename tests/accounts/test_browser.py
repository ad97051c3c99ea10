"""A person in a real browser: sign up, sign out, sign in, switch to Chinese."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.db.migrate import upgrade
from app.web.factory import create_app
from tests.conftest import make_settings
from tests.support.servers import serve_in_thread


@pytest.mark.browser
def test_sign_up_out_in_and_switch_language(sqlite_url: str, tmp_path: Path, page: Any) -> None:
    """SQLite only: the PostgreSQL fixture cannot run beside Playwright's loop; HTTP tests cover both."""
    settings = make_settings(tmp_path, sqlite_url, stripe_api_base="http://127.0.0.1:9")
    # Playwright keeps an event loop running in this thread; migrations use asyncio.run.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade, settings).result()
    with serve_in_thread(create_app(settings)) as base:
        page.goto(base + "/sign-up")
        page.fill("#f-email", "Browser@Example.com")
        page.fill("#f-password", "browser password")
        page.click("button.primary")
        page.wait_for_url(lambda url: "/sign-up" not in url)
        assert "/account" in page.url
        page.goto(base + "/sign-in")
        assert page.locator("form[action='/sign-out'] button").is_visible()

        page.click("form[action='/sign-out'] button")
        page.wait_for_url(base + "/")
        page.goto(base + "/sign-in")
        assert page.locator("a[href='/sign-up']").first.is_visible()

        page.fill("#f-email", "browser@example.com")
        page.fill("#f-password", "wrong password")
        page.click("button.primary")
        assert page.locator("p.error[role='alert']").inner_text() == (
            "That email and password do not match an account."
        )
        assert page.input_value("#f-email") == "browser@example.com"
        assert page.input_value("#f-password") == ""

        page.fill("#f-password", "browser password")
        page.click("button.primary")
        page.wait_for_url(lambda url: "/sign-in" not in url)

        page.goto(base + "/sign-up")
        page.click("a[hreflang='zh']")
        page.wait_for_url(base + "/sign-up")
        assert page.locator("html").get_attribute("lang") == "zh-Hans"
        assert page.locator("form[action='/sign-out'] button").inner_text() == "退出登录"
        page.reload()
        assert "创建您的账户" in page.locator("h1").inner_text()
