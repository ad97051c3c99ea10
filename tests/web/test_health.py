"""``/healthz``: the database answers, and the catalogue is the file on disk or says why not.

The public ``/healthz`` says only ok or not; the detail moved to ``/healthz/detail`` (behind the
metrics token, open in development without one), so these tests read it there.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import httpx
from litestar.testing import TestClient

from app.settings import PROJECT_ROOT, Settings
from app.web.factory import create_app
from tests.support.servers import serve_in_thread


def test_healthy_shop_reports_database_and_catalogue_version(settings: Settings) -> None:
    with TestClient(create_app(replace(settings, stripe_api_base="http://127.0.0.1:9"))) as client:
        public = client.get("/healthz")
        response = client.get("/healthz/detail")
    assert public.status_code == 200
    assert public.json() == {"status": "ok"}
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["catalogue"]["valid"] is True
    assert body["catalogue"]["problems"] == []
    assert len(body["catalogue"]["version"]) == 12


def test_broken_pricing_edit_is_reported_and_the_last_good_catalogue_kept(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    pricing = tmp_path / "pricing.toml"
    shutil.copy(PROJECT_ROOT / "pricing.toml", pricing)
    settings = replace(sqlite_settings, pricing_path=pricing, stripe_api_base="http://127.0.0.1:9")
    with serve_in_thread(create_app(settings)) as url:
        before = httpx.get(url + "/healthz/detail").json()["catalogue"]["version"]
        text = pricing.read_text(encoding="utf-8")
        pricing.write_text(text.replace('price = "9.99"', 'price = "9.999"', 1), encoding="utf-8")
        deadline = time.monotonic() + 5
        body = httpx.get(url + "/healthz/detail").json()
        while body["catalogue"]["valid"] and time.monotonic() < deadline:
            time.sleep(0.1)
            body = httpx.get(url + "/healthz/detail").json()
        assert body["status"] == "degraded"
        assert httpx.get(url + "/healthz").json() == {"status": "degraded"}
        assert body["catalogue"]["valid"] is False
        assert body["catalogue"]["version"] == before, "the last valid catalogue stays live"
        assert any("9.999" in problem and "price" in problem for problem in body["catalogue"]["problems"])
        page = httpx.get(url + "/")
        assert page.status_code == 200
        assert "9.99" in page.text


def test_unreachable_database_answers_503(sqlite_settings: Settings, tmp_path: Path) -> None:
    broken = replace(
        sqlite_settings,
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        stripe_api_base="http://127.0.0.1:9",
    )
    with TestClient(create_app(broken)) as client:
        public = client.get("/healthz")
        response = client.get("/healthz/detail")
    assert public.status_code == 503
    assert public.json() == {"status": "degraded"}
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False
