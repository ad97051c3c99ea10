"""Sign-in links from the host API: single use, five minutes, only a hash stored, a 4xx page otherwise."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from litestar.testing import TestClient

from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import client_for, csrf, is_signed_in, post_form
from tests.api.support import api_client, assert_problem, bearer, make_key, rows
from tests.support.servers import serve_in_thread

C = "/api/v1/customers"


@pytest.fixture
def link_settings(settings: Settings) -> Settings:
    return replace(settings, stripe_api_base="http://127.0.0.1:9", trusted_proxies=("127.0.0.1",))


@pytest.fixture
def api(link_settings: Settings) -> Iterator[TestClient[Any]]:
    key = make_key(link_settings)
    with api_client(link_settings) as client:
        client.headers.update(bearer(key))
        client.put(C + "/cust-1", json={"email": "cust1@example.com", "name": "C"})
        yield client


def _link(api: TestClient[Any], next_path: str | None = None, external_id: str = "cust-1") -> str:
    body = {} if next_path is None else {"next": next_path}
    response = api.post(f"{C}/{external_id}/sign-in-links", json=body)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["expires_at"] - time.time() == pytest.approx(300, abs=5)
    return str(urlparse(out["url"]).path)


def _signed_in_email(client: TestClient[Any]) -> str | None:
    page = client.get("/account", follow_redirects=False)
    if page.status_code != 200:
        return None
    return "cust1@example.com" if "cust1@example.com" in page.text else "someone else"


def test_a_link_signs_the_customer_in_once(api: TestClient[Any], link_settings: Settings) -> None:
    path = _link(api, "/account?tab=usage")
    token = path.rsplit("/", 1)[1]
    [row] = rows(link_settings, "SELECT token_hash, next_path, used_at FROM sign_in_link")
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(row)
    with client_for(link_settings) as browser:
        page = browser.get(path)  # what a mail client's link scanner does
        assert page.status_code == 200
        assert 'data-link-state="valid"' in page.text
        assert "_csrf_token" in page.text
        assert rows(link_settings, "SELECT used_at FROM sign_in_link")[0]["used_at"] is None
        assert not is_signed_in(browser)
        used = post_form(browser, path)
        assert used.status_code == 303
        assert used.headers["location"] == "/account?tab=usage"
        assert _signed_in_email(browser) == "cust1@example.com"
    with client_for(link_settings) as other:
        again = post_form(other, path)
        assert again.status_code == 410
        assert 'data-link-state="spent"' in again.text
        assert not is_signed_in(other)
        assert other.get(path).status_code == 410


def test_the_default_next_is_the_account_page(api: TestClient[Any], link_settings: Settings) -> None:
    path = _link(api)
    with client_for(link_settings) as browser:
        assert post_form(browser, path).headers["location"] == "/account"


def test_an_expired_link_signs_in_nobody(api: TestClient[Any], link_settings: Settings) -> None:
    path = _link(api)
    rows(link_settings, "UPDATE sign_in_link SET expires_at = :t", t=int(time.time()) - 1)
    with client_for(link_settings) as browser:
        assert browser.get(path).status_code == 410
        response = post_form(browser, path)
        assert response.status_code == 410
        assert not is_signed_in(browser)


@pytest.mark.parametrize("change", ["flip", "short", "long", "junk"])
def test_a_tampered_link_signs_in_nobody(api: TestClient[Any], link_settings: Settings, change: str) -> None:
    path = _link(api)
    token = path.rsplit("/", 1)[1]
    tampered = {
        "flip": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "short": token[:-1],
        "long": token + "A",
        "junk": "%00%ff..",
    }[change]
    with client_for(link_settings) as browser:
        page = browser.get("/sign-in/link/" + tampered)
        assert page.status_code == 404
        assert 'data-link-state="unknown"' in page.text
        response = post_form(browser, "/sign-in/link/" + tampered)
        assert response.status_code == 404
        assert not is_signed_in(browser)
    assert rows(link_settings, "SELECT used_at FROM sign_in_link")[0]["used_at"] is None


def test_the_pages_speak_english_and_chinese(api: TestClient[Any], link_settings: Settings) -> None:
    path = _link(api)
    with client_for(link_settings, **{"accept-language": "zh-CN"}) as browser:
        assert "继续" in browser.get(path).text
        assert "此登录链接无效" in browser.get("/sign-in/link/nope").text
        post_form(browser, path)
    with client_for(link_settings, **{"accept-language": "zh-CN"}) as browser:
        spent = post_form(browser, path)
        assert spent.status_code == 410
        assert "此登录链接已失效" in spent.text
    with client_for(link_settings, **{"accept-language": "en"}) as browser:
        assert "This sign-in link is no longer valid" in browser.get(path).text
        assert "This sign-in link is not valid" in browser.get("/sign-in/link/nope").text


def test_a_post_without_csrf_uses_nothing(api: TestClient[Any], link_settings: Settings) -> None:
    path = _link(api)
    with client_for(link_settings) as browser:
        csrf(browser)
        assert browser.post(path, data={}).status_code == 403
    assert rows(link_settings, "SELECT used_at FROM sign_in_link")[0]["used_at"] is None


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example", "//evil.example", "/\\evil.example", "evil", "/a\tb", "javascript:x"],
)
def test_next_must_be_a_local_path(api: TestClient[Any], link_settings: Settings, next_path: str) -> None:
    response = api.post(C + "/cust-1/sign-in-links", json={"next": next_path})
    assert_problem(response, 422, "invalid_request", "next")
    assert rows(link_settings, "SELECT token_hash FROM sign_in_link") == []


def test_links_for_unknown_customers_are_404(api: TestClient[Any]) -> None:
    assert_problem(api.post(C + "/nobody/sign-in-links", json={}), 404, "customer_not_found")


def test_a_read_key_cannot_make_links(api: TestClient[Any], link_settings: Settings) -> None:
    reader = make_key(link_settings, ("read",))
    response = api.post(C + "/cust-1/sign-in-links", json={}, headers=bearer(reader))
    assert_problem(response, 403, "insufficient_scope")


def test_the_validity_comes_from_settings(link_settings: Settings) -> None:
    settings = replace(link_settings, sign_in_link_seconds=60)
    key = make_key(settings)
    with api_client(settings) as api:
        api.headers.update(bearer(key))
        api.put(C + "/short", json={"email": "short@example.com"})
        out = api.post(C + "/short/sign-in-links", json={}).json()
    assert out["expires_at"] - time.time() == pytest.approx(60, abs=5)


def test_link_use_is_rate_limited_per_address(api: TestClient[Any], link_settings: Settings) -> None:
    """Ten uses a minute per client address (the sign-in form's counter), behind a trusted proxy."""
    path = _link(api)

    def posts(base: str, address: str, paths: list[str]) -> list[int]:
        with httpx.Client(base_url=base, headers={"x-forwarded-for": address}) as http:
            http.get("/sign-in")
            token = http.cookies["csrftoken"]
            return [http.post(p, data={"_csrf_token": token}).status_code for p in paths]

    with serve_in_thread(create_app(link_settings)) as base:
        wrong = "/sign-in/link/" + "A" * 43
        assert posts(base, "10.9.8.7", [wrong] * 11 + [path]) == [404] * 10 + [429, 429]
        assert posts(base, "10.9.8.8", [path]) == [303]


def test_concurrent_uses_sign_in_at_most_once(api: TestClient[Any], link_settings: Settings) -> None:
    path = _link(api)

    async def race(base: str) -> list[int]:
        async def one(n: int) -> int:
            async with httpx.AsyncClient(
                base_url=base, headers={"x-forwarded-for": f"10.1.2.{n + 1}"}
            ) as http:
                await http.get("/sign-in")
                token = http.cookies["csrftoken"]
                response = await http.post(path, data={"_csrf_token": token}, follow_redirects=False)
                return response.status_code

        return list(await asyncio.gather(*(one(n) for n in range(8))))

    with serve_in_thread(create_app(link_settings)) as base:
        statuses = asyncio.run(race(base))
    assert sorted(statuses) == [303] + [410] * 7, statuses
