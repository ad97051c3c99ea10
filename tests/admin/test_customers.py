"""``/admin/customers``: search, the detail page, and adjustments (refused ones change nothing)."""

from __future__ import annotations

import re
from typing import Any

from app.settings import Settings
from tests.admin.console_data import Seeded
from tests.admin.support import ADMIN_EMAIL, admin_post, client_as
from tests.support.shop import run_sql


def _token(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found, "the adjust form carries its one-time token"
    return found.group(1)


def _available(settings: Settings, user_id: int) -> int:
    sql = "SELECT available FROM balance WHERE user_id = :u AND asset = 'coins'"
    rows = run_sql(settings, sql, u=user_id)
    return int(rows[0]["available"])


def _adjust(client: Any, user_id: int, **fields: str) -> Any:
    token = _token(client.get(f"/admin/customers/{user_id}").text)
    return admin_post(
        client, f"/admin/customers/{user_id}/adjust", **{"token": token, "asset": "coins", **fields}
    )


def test_search_by_email_or_external_id_and_the_detail_page(console: Settings, seeded: Seeded) -> None:
    with client_as(console, ADMIN_EMAIL) as client:
        for term in (seeded.buyer_email.split("@")[0].upper(), "user_42"):
            found = client.get("/admin/customers", params={"q": term})
            assert found.status_code == 200
            assert f'data-customer="{seeded.buyer_id}"' in found.text
        assert "data-customer" not in client.get("/admin/customers", params={"q": "user_4"}).text
        assert "data-customer" not in client.get("/admin/customers", params={"q": "%"}).text
        detail = client.get(f"/admin/customers/{seeded.buyer_id}")
        assert detail.status_code == 200
        for text in (
            seeded.buyer_email,
            "user_42",
            'data-balance="coins"',
            "data-lot=",
            'data-kind="purchase"',
        ):
            assert text in detail.text, text
        assert client.get("/admin/customers/999999").status_code == 404


def test_adjust_grants_removes_refuses_and_counts_a_resent_form_once(
    console: Settings, seeded: Seeded
) -> None:
    start = _available(console, seeded.buyer_id)
    with client_as(console, ADMIN_EMAIL) as client:
        token = _token(client.get(f"/admin/customers/{seeded.buyer_id}").text)
        fields = {"token": token, "asset": "coins", "direction": "grant", "units": "25", "reason": "goodwill"}
        path = f"/admin/customers/{seeded.buyer_id}/adjust"
        assert admin_post(client, path, **fields).status_code == 303
        assert admin_post(client, path, **fields).status_code == 303  # the same form again: once
        assert _available(console, seeded.buyer_id) == start + 25

        too_much = _adjust(client, seeded.buyer_id, direction="remove", units=str(start + 26), reason="x")
        assert too_much.status_code == 400
        assert f"only {start + 25:,} can be removed now" in too_much.text
        for bad in (
            {"direction": "remove", "units": "5", "reason": ""},
            {"direction": "remove", "units": "0", "reason": "r"},
            {"direction": "remove", "units": "-5", "reason": "r"},
            {"direction": "sideways", "units": "5", "reason": "r"},
            {"direction": "grant", "units": "5", "reason": "r", "asset": "gold"},
            {"direction": "grant", "units": "5", "reason": "r" * 501},
            {"direction": "grant", "units": "5", "reason": "r", "token": "short"},
        ):
            assert _adjust(client, seeded.buyer_id, **bad).status_code == 400, bad
        assert (
            _adjust(client, seeded.buyer_id, direction="remove", units="5", reason="abuse").status_code == 303
        )
        assert _available(console, seeded.buyer_id) == start + 20

    audit = run_sql(console, "SELECT action, reason, before_json, after_json FROM audit_log ORDER BY id")
    assert [(row["action"], row["reason"]) for row in audit] == [
        ("customer.adjust", "goodwill"),
        ("customer.adjust", "abuse"),
    ]
    assert f'"balance":{start}' in audit[0]["before_json"]
    assert f'"balance":{start + 25}' in audit[0]["after_json"]
    kinds = run_sql(console, "SELECT units FROM ledger_entry WHERE kind = 'adjustment' ORDER BY id")
    assert [row["units"] for row in kinds] == [25, -5]
