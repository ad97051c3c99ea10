"""A host application's whole journey with one of its users, in Chromium and over HTTP.

The host makes a customer and signs them into the shop with a one-time link; the customer
buys an API-quota pack on the sandbox's hosted Checkout and makes a buyer key on the account
page; the host's gateway then spends that key through ``POST /api/v1/keys/verify`` until the
shop says ``insufficient_balance``. The pack is spent exactly (never more, even with calls in
parallel) and the account page shows the spending.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app.catalogue.loader import load_catalogue
from tests.api.support import bearer, make_key
from tests.support.shop import Shop

pytestmark = pytest.mark.browser

CUSTOMER = "host-user-1"
PACK = "quota-starter"
COST = 10
GATEWAY_WORKERS = 3


def _pack_units(shop: Shop) -> int:
    """What the pack credits (units + bonus), read from the same catalogue the shop sells."""
    pack = load_catalogue(shop.settings.pricing_path).get(PACK)
    assert pack is not None
    assert pack.asset == "quota"
    return int(pack.units + pack.bonus)


def _server_key(shop: Shop) -> str:
    """A server key (read, spend), made in a thread: make_key runs its own event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(make_key, shop.settings, ("read", "spend")).result()


class Gateway:
    """The host's API gateway: each call it lets through is charged ``cost`` to the buyer key."""

    def __init__(self, shop_url: str, server_key: str) -> None:
        self.client = httpx.Client(base_url=shop_url, headers=bearer(server_key), timeout=30)

    def close(self) -> None:
        self.client.close()

    def call(self, key: str, cost: int) -> dict[str, Any]:
        answer = self.client.post("/api/v1/keys/verify", json={"key": key, "cost": cost})
        assert answer.status_code == 200, (answer.status_code, answer.text[:500])
        verdict: dict[str, Any] = answer.json()
        return verdict

    def spend_until_refused(self, key: str, cost: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Calls until one is refused: the verdicts let through, and the refusal."""
        allowed: list[dict[str, Any]] = []
        while True:
            verdict = self.call(key, cost)
            if not verdict["valid"]:
                return allowed, verdict
            allowed.append(verdict)


def test_host_signs_in_its_user_who_buys_quota_and_the_host_spends_it_exactly(
    page: Any, e2e_shop: Shop
) -> None:
    shop = e2e_shop
    units = _pack_units(shop)
    assert units % COST == 0, "the pack should be spendable exactly in calls of COST"
    server_key = _server_key(shop)
    api = httpx.Client(base_url=shop.url + "/api/v1", headers=bearer(server_key), timeout=30)
    try:
        # 1. The host makes its user a customer and signs them in with a one-time link.
        made = api.put(f"/customers/{CUSTOMER}", json={"email": "host-user-1@example.com"})
        assert made.status_code == 201, made.text
        link = api.post(f"/customers/{CUSTOMER}/sign-in-links", json={"next": "/"})
        assert link.status_code == 201, link.text
        page.goto(link.json()["url"])
        assert page.locator("section[data-link-state]").get_attribute("data-link-state") == "valid"
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(shop.url + "/")
        page.goto(shop.url + "/account")
        assert "host-user-1@example.com" in page.locator("main").inner_text()

        # 2. The customer buys a quota pack on the hosted Checkout; the success page sees it credited.
        page.goto(shop.url + "/")
        page.locator(f"#pack-{PACK} button[type=submit]").click()
        page.wait_for_url(re.compile(r"/c/pay/cs_"))
        page.get_by_label("Email").fill("host-user-1@example.com")
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_label("Expiration").fill("12 / 34")
        page.get_by_label("CVC").fill("123")
        page.get_by_label("Cardholder name").fill("Jenny Rosen")
        page.get_by_role("button", name="Pay").click()
        page.wait_for_url(re.compile(r"/checkout/success\?session_id=cs_"))
        page.locator('#order-status[data-status="paid"]').wait_for(timeout=15_000)
        assert f"We added {units} calls to your balance." in page.locator("#order-status").inner_text()
        customer = api.get(f"/customers/{CUSTOMER}").json()
        assert customer["balances"]["quota"]["available"] == units

        # 3. On the account page they make a buyer key for quota, shown once.
        page.goto(shop.url + "/account")
        assert page.locator('tr[data-asset="quota"] td.available').get_attribute("data-units") == str(units)
        page.fill("#k-name", "Host app")
        page.select_option("#k-asset", "quota")
        page.locator("#api-keys button.primary").click()
        secret_box = page.locator("#new-key-secret")
        secret_box.wait_for()
        buyer_key = secret_box.input_value()
        assert buyer_key.startswith("sk_quota_")

        # 4. The host's gateway spends the key, several calls at once, until the shop refuses.
        gateway = Gateway(shop.url, server_key)
        try:
            with ThreadPoolExecutor(GATEWAY_WORKERS) as pool:
                runs = list(
                    pool.map(lambda _: gateway.spend_until_refused(buyer_key, COST), range(GATEWAY_WORKERS))
                )
        finally:
            gateway.close()
        allowed = [v for run_allowed, _ in runs for v in run_allowed]
        refusals = [refusal for _, refusal in runs]
        assert all(r["code"] == "insufficient_balance" and r["charged"] == 0 for r in refusals), refusals
        assert all(v["external_id"] == CUSTOMER and v["asset"] == "quota" for v in allowed)
        assert all(v["charged"] == COST for v in allowed), allowed
        assert sum(v["charged"] for v in allowed) == units
        assert len(allowed) == units // COST
        assert sorted(v["remaining"] for v in allowed) == list(range(0, units, COST))
        quota = api.get(f"/customers/{CUSTOMER}").json()["balances"]["quota"]
        assert (quota["available"], quota["reserved"], quota["debt"]) == (0, 0, 0)
        debits = [e for e in api.get(f"/customers/{CUSTOMER}/entries").json()["data"] if e["kind"] == "debit"]
        assert len(debits) == units // COST

        # 5. The account page shows the spending: "Used" entries and the key's use.
        page.reload()
        assert page.locator('tr[data-asset="quota"] td.available').get_attribute("data-units") == "0"
        assert page.locator("#new-key-secret").count() == 0
        used = page.locator('table.entries tr[data-kind="debit"]')
        assert used.count() == units // COST
        for i in range(used.count()):
            cells = used.nth(i).locator("td")
            assert cells.nth(1).inner_text() == "Used"
            assert cells.nth(2).inner_text().startswith(f"-{COST} ")
        assert page.locator('table.entries tr[data-kind="purchase"]').count() == 1
        key_row = page.locator("#api-keys tbody tr").first
        assert "Host app" in key_row.inner_text()
        total = key_row.locator("td.total").inner_text()
        assert total.startswith(str(units)), total
        assert f"calls: {units // COST}" in total
        assert "Never" not in key_row.locator("td.when").first.inner_text()
    finally:
        api.close()
