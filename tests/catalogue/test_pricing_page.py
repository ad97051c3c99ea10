"""The pricing page: packs by asset in both languages, Buy forms with CSRF, the page cache, its weight."""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.catalogue.page_cache import PricingPageCache
from app.settings import PROJECT_ROOT, Settings
from app.web.factory import create_app
from tests.conftest import make_settings, migrate

from .factories import make_pack, render

NO_SANDBOX = "http://127.0.0.1:9"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    from dataclasses import replace

    with TestClient(create_app(replace(settings, stripe_api_base=NO_SANDBOX))) as c:
        yield c


def _cards(html: str) -> dict[str, str]:
    return dict(re.findall(r'<li class="card[^"]*" id="pack-([a-z0-9-]+)">(.*?)</li>', html, re.S))


def test_packs_grouped_by_asset_in_english(client: TestClient) -> None:  # type: ignore[type-arg]
    html = client.get("/", headers={"Accept-Language": "en-US"}).text
    coins, quota = html.index('id="asset-coins">Coins</h2>'), html.index('id="asset-quota">API quota</h2>')
    assert coins < html.index("pack-coins-100") < html.index("pack-coins-2500") < quota
    assert quota < html.index("pack-quota-starter") < html.index("pack-quota-enterprise")
    cards = _cards(html)
    assert "$19.99" in cards["coins-2500"]
    assert "2,500 coins" in cards["coins-2500"]
    assert "+500 bonus" in cards["coins-2500"]
    assert "$0.0999 per call" in cards["quota-starter"]
    assert "$0.00666 per coin" in cards["coins-2500"]
    # computed best value (cheapest per unit) vs. badges written in the file
    assert "Best value" in cards["coins-2500"]
    assert "Best value" in cards["quota-enterprise"]
    assert "Popular" in cards["coins-500"]
    assert "Best value" not in cards["coins-500"]
    assert "Most popular" in cards["quota-pro"]


def test_chinese_by_accept_language_and_by_cookie(client: TestClient) -> None:  # type: ignore[type-arg]
    for how in ("header", "cookie"):
        if how == "cookie":
            client.cookies.set("lang", "zh")
        headers = {"Accept-Language": "zh-CN,zh;q=0.9" if how == "header" else "en"}
        html = client.get("/", headers=headers).text
        assert '<html lang="zh-Hans">' in html
        assert ">金币</h2>" in html
        assert ">API 调用额度</h2>" in html
        cards = _cards(html)
        assert "US$19.99" in cards["coins-2500"]
        assert "另赠 500" in cards["coins-2500"]
        assert "US$0.0999/次调用" in cards["quota-starter"]
        assert "最超值" in cards["coins-2500"]
        assert ">购买</button>" in cards["coins-2500"]
        client.cookies.clear()


def test_buy_form_posts_pack_with_csrf_token_matching_cookie(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/")
    cookie = response.cookies.get("csrftoken")
    assert cookie
    assert re.fullmatch(r"[0-9a-f]{128}", cookie)
    forms = re.findall(r'<form method="post" action="/checkout">(.*?)</form>', response.text, re.S)
    assert len(forms) == 8
    for form in forms:
        assert f'name="_csrf_token" value="{cookie}"' in form
        assert re.search(r'name="pack" value="[a-z0-9-]+"', form)
    # a returning visitor keeps its token; the cached page carries it, not a new one
    again = client.get("/")
    assert "csrftoken" not in again.cookies or again.cookies["csrftoken"] == cookie
    assert again.text.count(cookie) == 9  # 8 forms + the htmx header
    # a forged cookie is replaced, never echoed into the page
    client.cookies.set("csrftoken", '"><script>alert(1)</script>')
    forged = client.get("/")
    assert "<script>alert" not in forged.text
    assert re.fullmatch(r"[0-9a-f]{128}", forged.cookies["csrftoken"])


def test_pricing_alias_redirects(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/pricing", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == "/"


def test_no_session_written_for_anonymous_visitors(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/")
    assert "session" not in response.cookies


def test_inactive_pack_hidden_and_cache_follows_the_catalogue(tmp_path: Path, sqlite_url: str) -> None:
    pricing = tmp_path / "pricing.toml"
    packs = [
        make_pack(id="small", units=100, price="1.00", order=1),
        make_pack(id="big", units=1000, price="5.00", order=2, name={"en": "Big", "zh": "大"}),
        make_pack(id="gone", units=10, price="0.99", order=3, active=False),
    ]
    pricing.write_bytes(render(*packs))
    settings = make_settings(tmp_path, sqlite_url, pricing_path=pricing, stripe_api_base=NO_SANDBOX)
    migrate(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        html = client.get("/").text
        assert "pack-small" in html
        assert "pack-big" in html
        assert "pack-gone" not in html
        assert "$5.00" in html
        cache = PricingPageCache.of(app)
        renders = cache.renders
        client.get("/")
        assert cache.renders == renders  # served from the cache
        packs[1] = make_pack(id="big", units=1000, price="7.00", order=2, name={"en": "Big", "zh": "大"})
        pricing.write_bytes(render(*packs))
        deadline = time.monotonic() + 5  # the holder's watcher polls every 0.5 s
        while "$7.00" not in (html := client.get("/").text) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "$7.00" in html
        assert "$5.00" not in html
        assert cache.renders > renders


def test_gzip_page_decodes_and_total_transfer_is_small(client: TestClient) -> None:  # type: ignore[type-arg]
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    raw = client.get("/", headers={"Accept-Encoding": "identity"})
    assert raw.headers.get("content-encoding") is None
    token = page.cookies["csrftoken"]
    # the spliced gzip stream is valid and carries the same page
    with client.stream("GET", "/", headers={"Accept-Encoding": "gzip"}) as streamed:
        body = b"".join(streamed.iter_raw())
    assert gzip.decompress(body).decode().count(token) == 9
    assert token in page.text
    total = int(page.headers["content-length"])
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert "/static/js/htmx-2.0.8.min.js" in assets
    assert "/static/css/site.css" in assets
    for path in assets:
        asset = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert asset.status_code == 200
        assert asset.headers["content-encoding"] == "gzip"
        assert "max-age" in asset.headers["cache-control"]
        assert asset.content == (PROJECT_ROOT / path.removeprefix("/")).read_bytes()
        total += int(asset.headers["content-length"])
    assert total <= 30 * 1024, f"pricing page transfer is {total} bytes"


def test_static_revalidates_with_etag(client: TestClient) -> None:  # type: ignore[type-arg]
    first = client.get("/static/css/site.css")
    again = client.get("/static/css/site.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    htmx = client.get("/static/js/htmx-2.0.8.min.js")
    assert "immutable" in htmx.headers["cache-control"]
    assert client.get("/static/../pyproject.toml").status_code == 404
