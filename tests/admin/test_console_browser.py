"""An admin in Chromium: adjusts a balance, replays a failed event, reads the catalogue's diff.

SQLite only (the PostgreSQL fixture cannot run beside Playwright's loop; the HTTP tests cover
both databases). The catalogue's watcher is off, so the file edited on disk stays different
from what is live for as long as the test looks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from app.settings import PROJECT_ROOT, Settings
from app.web.factory import create_app
from tests.accounts.support import PASSWORD
from tests.admin.console_data import Seeded, seed
from tests.admin.support import ADMIN_EMAIL, make_user
from tests.support.servers import serve_in_thread
from tests.support.shop import run_sql


@dataclass(frozen=True, slots=True)
class Console:
    url: str
    settings: Settings
    data: Seeded
    pricing: Path


@pytest.fixture
def console_shop(sqlite_settings: Settings, tmp_path: Path, frozen_catalogue: None) -> Iterator[Console]:
    pricing = tmp_path / "pricing.toml"
    pricing.write_bytes((PROJECT_ROOT / "pricing.toml").read_bytes())
    settings = replace(sqlite_settings, pricing_path=pricing, host_webhooks_deliver=False)
    make_user(settings, ADMIN_EMAIL, is_admin=True)
    data = seed(settings)
    with serve_in_thread(create_app(settings)) as url:
        yield Console(url, settings, data, pricing)


def _sign_in(tab: Any, base: str, path: str) -> None:
    tab.goto(base + path)  # the guard sends a visitor to sign in, then back here
    tab.fill("#f-email", ADMIN_EMAIL)
    tab.fill("#f-password", PASSWORD)
    tab.click("button.primary")
    tab.wait_for_url(lambda url: url.endswith(path))


def _available(tab: Any) -> str:
    return str(tab.locator('tr[data-balance="coins"] td[data-available]').inner_text())


@pytest.mark.browser
def test_find_a_customer_and_adjust_their_balance(console_shop: Console, page: Any) -> None:
    _sign_in(page, console_shop.url, "/admin/customers")
    page.fill("input[name=q]", "user_42")
    page.click("form.filters button")
    page.click(f'tr[data-customer="{console_shop.data.buyer_id}"] a')
    assert _available(page) == "1,100"  # the purchase

    page.check("input[name=direction][value=grant]")
    page.fill("#f-units", "50")
    page.fill("#f-reason", "Goodwill after the outage")
    page.click("form.adjust button")
    page.wait_for_selector(".flash, [role=status], .flashes")
    assert _available(page) == "1,150"
    entry = page.locator('tr[data-kind="adjustment"]').first
    assert "Goodwill after the outage" in entry.inner_text()

    page.check("input[name=direction][value=remove]")
    page.fill("#f-units", "2000")
    page.fill("#f-reason", "Chargeback abuse")
    page.click("form.adjust button")
    assert "Cannot remove 2,000: only 1,150 can be removed now" in page.locator("#adjust-error").inner_text()
    assert _available(page) == "1,150"
    assert page.input_value("#f-reason") == "Chargeback abuse"  # the form keeps what was typed

    page.fill("#f-units", "150")
    page.click("form.adjust button")
    page.wait_for_selector("#adjust-error", state="detached")
    assert _available(page) == "1,000"

    page.goto(console_shop.url + "/admin/audit")
    rows = page.locator('tr[data-action="customer.adjust"]')
    assert rows.count() == 2
    assert "Chargeback abuse" in rows.first.inner_text()


@pytest.mark.browser
def test_replay_a_failed_event(console_shop: Console, page: Any) -> None:
    event_id = console_shop.data.failed_event
    _sign_in(page, console_shop.url, "/admin/events")
    page.select_option("select[name=outcome]", "failed")
    page.click("form.filters button")
    assert page.locator("tr[data-event]").count() == 1
    page.click(f'tr[data-event="{event_id}"] a')
    assert "amount must be an integer" in page.locator("[data-failure]").inner_text()
    assert '"re_fixed_later"' in page.locator("pre.json").inner_text()

    page.fill("#f-reason", "payload fixed by hand")
    page.click("form.replay button")
    page.wait_for_selector("[data-failure]", state="detached")
    assert not page.locator("[data-outcome]").inner_text().startswith("failed")
    page.fill("#f-reason", "again, to be sure")
    page.click("form.replay button")
    page.wait_for_selector("form.replay")
    refunds = run_sql(
        console_shop.settings,
        "SELECT count(*) AS n FROM ledger_entry WHERE kind = 'refund' AND order_id = :o",
        o=console_shop.data.order_id,
    )
    assert refunds[0]["n"] == 1  # replayed twice, applied once

    page.goto(console_shop.url + "/admin/events?outcome=failed")
    assert page.locator("tr[data-event]").count() == 0


@pytest.mark.browser
def test_read_the_catalogue_diff_in_chinese_without_javascript(console_shop: Console, browser: Any) -> None:
    context = browser.new_context(
        java_script_enabled=False, locale="zh-CN", extra_http_headers={"accept-language": "zh-CN"}
    )
    try:
        tab = context.new_page()
        _sign_in(tab, console_shop.url, "/admin/catalogue")
        assert tab.locator('[data-diff="same"]').count() == 1
        text = console_shop.pricing.read_text()
        console_shop.pricing.write_text(text.replace('id = "coins-1000-cny"', 'id = "coins-1000-rmb"', 1))
        tab.reload()
        assert "磁盘上的文件" in tab.locator("#disk").inner_text()
        assert tab.locator('tr[data-change="coins-1000-cny"][data-kind="removed"]').count() == 1
        assert "新增" in tab.locator('tr[data-change="coins-1000-rmb"]').inner_text()
        assert tab.locator('tr[data-pack="coins-1000-cny"]').count() == 1  # live still sells it
    finally:
        context.close()


_PHONE_WIDTH = 375
_LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > width) {
    const wide = [...document.querySelectorAll('main *')].find(
      (el) => el.getBoundingClientRect().right > width + 1 && !el.closest('.table-wrap'));
    problems.push('page wider than the screen: ' + (wide ? wide.outerHTML.slice(0, 80) : '?'));
  }
  for (const radio of document.querySelectorAll('main input[type=radio], main input[type=checkbox]')) {
    if (radio.getBoundingClientRect().width > 40)
      problems.push('a stretched ' + radio.type + ': ' + radio.value);
  }
  const controls = 'main form :is(input:not([type=hidden]), select, textarea, button)';
  for (const control of document.querySelectorAll(controls)) {
    const box = control.getBoundingClientRect();
    if (control.type !== 'radio' && control.type !== 'checkbox' && box.height < 30)
      problems.push('too small to tap (' + Math.round(box.height) + 'px): ' + control.outerHTML.slice(0, 60));
  }
  return problems;
}"""


@pytest.mark.browser
def test_every_console_page_fits_a_phone_with_controls_one_can_tap(console_shop: Console, page: Any) -> None:
    """At 375 px no page scrolls sideways (wide tables scroll in their own box), radios sit beside
    their labels, and every field and button is big enough to tap."""
    data = console_shop.data
    page.set_viewport_size({"width": _PHONE_WIDTH, "height": 800})
    _sign_in(page, console_shop.url, "/admin")
    paths = [
        "/admin",
        "/admin/orders",
        f"/admin/orders/{data.order_id}",
        "/admin/customers",
        f"/admin/customers/{data.buyer_id}",
        "/admin/events",
        f"/admin/events/{data.failed_event}",
        f"/admin/events/{data.paid_event}",
        "/admin/deliveries",
        "/admin/catalogue",
        "/admin/audit",
        "/admin/ledger",
    ]
    found = {}
    for path in paths:
        page.goto(console_shop.url + path)
        if problems := page.evaluate(_LAYOUT_PROBLEMS):
            found[path] = problems
    assert found == {}, found
