"""``/admin/catalogue`` (the live table, the file's diff or its problems) and ``/admin/ledger`` (the
streamed CSV download, which ``verify`` finds intact)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from app.ledger_export.service import verify
from app.settings import PROJECT_ROOT, Settings
from tests.admin.console_data import Seeded
from tests.admin.support import ADMIN_EMAIL, client_as, make_user


@pytest.mark.usefixtures("frozen_catalogue")
def test_the_live_table_then_the_diff_then_the_problems(sqlite_settings: Settings, tmp_path: Path) -> None:
    pricing = tmp_path / "pricing.toml"
    shipped = (PROJECT_ROOT / "pricing.toml").read_text()
    pricing.write_text(shipped)
    settings = replace(sqlite_settings, pricing_path=pricing)
    make_user(settings, ADMIN_EMAIL, is_admin=True)
    with client_as(settings, ADMIN_EMAIL) as client:
        page = client.get("/admin/catalogue").text
        assert 'data-pack="coins-1000-cny"' in page
        assert 'data-diff="same"' in page
        assert 'id = "coins-1000-cny"' in shipped
        pricing.write_text(shipped.replace('id = "coins-1000-cny"', 'id = "coins-1000-rmb"'))
        changed = client.get("/admin/catalogue").text
        assert 'data-diff="changed"' in changed
        assert 'data-change="coins-1000-cny" data-kind="removed"' in changed
        assert 'data-change="coins-1000-rmb" data-kind="added"' in changed
        pricing.write_text("[[packs]]\nid = 1\n")
        broken = client.get("/admin/catalogue").text
        assert 'data-diff="broken"' in broken
        assert 'data-pack="coins-1000-cny"' in broken  # still sold from the live version


def test_the_download_is_the_whole_ledger_and_verifies(console: Settings, seeded: Seeded) -> None:
    with client_as(console, ADMIN_EMAIL) as client:
        assert client.get("/admin/ledger").status_code == 200
        answer = client.get("/admin/ledger/export.csv")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        verdict = verify(io.StringIO(answer.text, newline=""))
        assert verdict.intact, verdict
        assert verdict.rows == 1  # the purchase
        later = client.get("/admin/ledger/export.csv", params={"since": "2999-01-01"})
        assert verify(io.StringIO(later.text, newline="")).rows == 0
        assert client.get("/admin/ledger/export.csv", params={"since": "yesterday"}).status_code == 400
