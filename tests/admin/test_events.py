"""``/admin/events`` and ``/admin/deliveries``: filters, the failed effect, replay and redeliver."""

from __future__ import annotations

import html

from app.settings import Settings
from tests.admin.console_data import Seeded
from tests.admin.support import ADMIN_EMAIL, admin_post, client_as
from tests.support.shop import run_sql


def _refund_entries(settings: Settings, order_id: int) -> int:
    rows = run_sql(
        settings, "SELECT count(*) AS n FROM ledger_entry WHERE order_id = :o AND kind = 'refund'", o=order_id
    )
    return int(rows[0]["n"])


def test_filters_the_failure_and_an_idempotent_replay(console: Settings, seeded: Seeded) -> None:
    event_row = f'data-event="{seeded.failed_event}"'
    with client_as(console, ADMIN_EMAIL) as client:
        everything = client.get("/admin/events").text
        assert event_row in everything
        assert everything.count("data-event=") == 2  # with the checkout.session.completed
        failed = client.get("/admin/events", params={"outcome": "failed"}).text
        assert event_row in failed
        assert failed.count("data-event=") == 1
        assert event_row not in client.get("/admin/events", params={"outcome": "applied"}).text
        by_type = client.get("/admin/events", params={"type": "checkout.session.completed"}).text
        assert event_row not in by_type
        assert by_type.count("data-event=") == 1
        assert client.get("/admin/events", params={"outcome": "weird"}).status_code == 400

        page = client.get(f"/admin/events/{seeded.failed_event}")
        assert page.status_code == 200
        assert "amount must be an integer" in page.text  # the failed effect's error
        shown = html.unescape(page.text)
        assert '\n  "data": {' in shown  # the payload, indented
        assert '"id": "re_fixed_later"' in shown
        assert client.get("/admin/events/evt_missing").status_code == 404

        path = f"/admin/events/{seeded.failed_event}/replay"
        assert admin_post(client, path, reason=" ").status_code == 400
        too_long = admin_post(client, path, reason="x" * 501)  # the same limit as every admin action's
        assert too_long.status_code == 400
        assert "Please keep the reason under 500 characters." in too_long.text
        assert _refund_entries(console, seeded.order_id) == 0
        assert admin_post(client, path, reason="fixed the payload").status_code == 303
        assert admin_post(client, path, reason="once more").status_code == 303
        after = client.get(f"/admin/events/{seeded.failed_event}").text
        assert "The effect failed" not in after
        assert event_row not in client.get("/admin/events", params={"outcome": "failed"}).text
        assert admin_post(client, "/admin/events/evt_missing/replay", reason="r").status_code == 404
    assert _refund_entries(console, seeded.order_id) == 1
    audit = run_sql(
        console,
        "SELECT subject_id, before_json, after_json FROM audit_log WHERE action = 'event.replay' ORDER BY id",
    )
    assert [row["subject_id"] for row in audit] == [seeded.failed_event] * 2
    assert '"failed: amount must be an integer' in audit[0]["before_json"]
    assert "failed" not in audit[0]["after_json"]


def test_deliveries_and_redeliver(console: Settings, seeded: Seeded) -> None:
    deliveries = run_sql(console, "SELECT id FROM host_delivery ORDER BY id")
    assert deliveries, "the credit was fanned out to the endpoint"
    delivery = int(deliveries[0]["id"])
    run_sql(console, "UPDATE host_delivery SET status = 'failed', attempts = 9 WHERE id = :d", d=delivery)
    with client_as(console, ADMIN_EMAIL) as client:
        listed = client.get("/admin/deliveries", params={"status": "failed"}).text
        assert f'data-delivery="{delivery}" data-status="failed"' in listed
        path = f"/admin/deliveries/{delivery}/redeliver"
        assert admin_post(client, path, reason="").status_code == 400
        assert admin_post(client, path, reason="x" * 501).status_code == 400
        assert admin_post(client, path, reason="host lost it").status_code == 303
        pending = client.get("/admin/deliveries", params={"status": "pending"}).text
        assert f'data-delivery="{delivery}" data-status="pending"' in pending
        assert admin_post(client, "/admin/deliveries/99999/redeliver", reason="r").status_code == 404
        assert client.get("/admin/deliveries", params={"status": "lost"}).status_code == 400
    row = run_sql(console, "SELECT status, attempts FROM host_delivery WHERE id = :d", d=delivery)[0]
    assert (row["status"], row["attempts"]) == ("pending", 0)
    audit = run_sql(console, "SELECT before_json FROM audit_log WHERE action = 'delivery.redeliver'")
    assert len(audit) == 1
    assert '"status":"failed"' in audit[0]["before_json"]
