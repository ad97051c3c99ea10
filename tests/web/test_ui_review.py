"""What a buyer sees: defects found by looking at the pages, kept from coming back.

A Chinese buyer pays through the mounted sandbox in a real browser, then reads the account
page on a phone: no English from the ledger's notes, dates in the page's language, no
horizontal scroll. A path no route matches answers in the buyer's language too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from app.web.factory import create_app
from tests.conftest import make_settings, migrate
from tests.support.servers import free_port, serve_in_thread

PASSWORD = "correct horse battery staple"


def _no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} scrolls sideways: {width}px"


def test_chinese_buyer_pays_and_reads_the_account_page_on_a_phone(
    sqlite_url: str, tmp_path: Path, page: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, sqlite_url, base_url=base)
    migrate(settings)
    with serve_in_thread(create_app(settings), port):
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto(f"{base}/language/zh?next=/sign-up")
        page.fill("#f-email", "zh-buyer@example.com")
        page.fill("#f-password", PASSWORD)
        page.click("form[action='/sign-up'] button[type=submit]")
        page.goto(f"{base}/")
        _no_horizontal_scroll(page)
        # The pack list is not indented like a bulleted list: cards line up with the heading.
        heading = page.locator("main h1").bounding_box()
        card = page.locator("#pack-coins-500").bounding_box()
        assert abs(card["x"] - heading["x"]) < 2

        page.locator("#pack-coins-500 button").click()
        page.wait_for_url("**/sandbox/c/pay/**")
        _no_horizontal_scroll(page)
        page.fill("#card_number", "4242 4242 4242 4242")
        page.fill("#expiry", "12 / 34")
        page.fill("#cvc", "123")
        page.fill("#name", "Zhang San")
        page.click("[data-testid=pay]")
        page.wait_for_url("**/checkout/success**")
        _no_horizontal_scroll(page)

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            page.goto(f"{base}/account")
            if page.locator("table.entries").count():
                break
            time.sleep(0.3)
        _no_horizontal_scroll(page)
        entries = page.locator("table.entries tbody").inner_text()
        assert "bonus" not in entries, entries
        assert "赠送" in entries
        purchases = page.locator("table.purchases tbody").inner_text()
        assert "年" in purchases, purchases
        assert "UTC" in purchases, purchases
        assert "一袋金币" in purchases

        # The same purchase read in English: the pack name follows the page, not the purchase.
        page.goto(f"{base}/language/en?next=/account")
        purchases = page.locator("table.purchases tbody").inner_text()
        assert "Bag of coins" in purchases, purchases
        assert "一袋金币" not in purchases, purchases
        assert "(500 + 50 bonus)" in page.locator("table.entries tbody").inner_text()


def test_unmatched_path_answers_in_the_buyers_language(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    migrate(settings)
    with TestClient(app=create_app(settings)) as client:
        by_header = client.get("/no-such-page", headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
        assert by_header.status_code == 404
        assert "未找到" in by_header.text
        assert 'lang="zh-Hans"' in by_header.text
        client.cookies.set("lang", "zh")
        by_cookie = client.get("/another/missing/page", headers={"Accept": "text/html"})
        assert by_cookie.status_code == 404
        assert "未找到" in by_cookie.text
        client.cookies.set("lang", "en")
        english = client.get("/no-such-page", headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
        assert "Not found" in english.text
