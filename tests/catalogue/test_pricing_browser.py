"""The pricing page in a real browser: both languages, 375 px wide, hot reload, keyboard focus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.web.factory import create_app
from tests.conftest import make_settings
from tests.support.servers import serve_in_thread

from .factories import make_pack, render

pytestmark = pytest.mark.browser


@pytest.fixture
def pricing_file(tmp_path: Path) -> Path:
    path = tmp_path / "pricing.toml"
    path.write_bytes(
        render(
            make_pack(id="small", units=100, price="1.00", order=1),
            make_pack(
                id="big", units=1000, bonus=200, price="5.00", order=2, name={"en": "Big", "zh": "大包"}
            ),
        )
    )
    return path


@pytest.fixture
def base_url(tmp_path: Path, sqlite_url: str, pricing_file: Path) -> Iterator[str]:
    from app.db.migrate import upgrade

    settings = make_settings(
        tmp_path, sqlite_url, pricing_path=pricing_file, stripe_api_base="http://127.0.0.1:9"
    )
    # Playwright keeps an event loop running in this thread; migrations use asyncio.run.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, settings).result()
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_english_and_chinese(page: Any, base_url: str) -> None:
    page.goto(base_url + "/")
    assert page.locator("h1").inner_text() == "Pricing"
    big = page.locator("#pack-big")
    assert "+200 bonus" in big.inner_text()
    assert "Best value" in big.inner_text()
    token = page.locator("#pack-big input[name=_csrf_token]").get_attribute("value")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert token == cookies["csrftoken"]
    page.get_by_role("link", name="简体中文").click()
    page.wait_for_url(base_url + "/")
    assert page.locator("h1").inner_text() == "价格"
    assert "另赠 200" in page.locator("#pack-big").inner_text()


def test_no_horizontal_scroll_at_375px(page: Any, base_url: str) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    for lang in ("en-US", "zh-CN"):
        page.set_extra_http_headers({"Accept-Language": lang})
        page.goto(base_url + "/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_hot_reload_visible_after_rewrite(page: Any, base_url: str, pricing_file: Path) -> None:
    page.goto(base_url + "/")
    assert "$5.00" in page.locator("#pack-big").inner_text()
    pricing_file.write_bytes(
        render(
            make_pack(id="small", units=100, price="1.00", order=1),
            make_pack(id="big", units=1000, price="6.00", order=2, name={"en": "Big", "zh": "大包"}),
        )
    )
    deadline = time.monotonic() + 2.5
    while True:
        page.reload()
        if "$6.00" in page.locator("#pack-big").inner_text() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "$6.00" in page.locator("#pack-big").inner_text()


def test_keyboard_focus_visible_on_buy_buttons(page: Any, base_url: str) -> None:
    page.goto(base_url + "/")
    button = page.locator("#pack-small button")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#pack-small') !== null"):
            break
    assert button.evaluate("el => el === document.activeElement && el.matches(':focus-visible')")
    outline = button.evaluate(
        "el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth"
    )
    assert outline.startswith("solid")
    assert not outline.endswith(" 0px")
