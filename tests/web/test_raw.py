"""The raw ASGI helpers, and the fast paths built on them, against what browsers and bots send.

A malformed ``Cookie`` header (an illegal name, a chunk without ``=``, bytes that are neither
latin-1 text nor UTF-8) is skipped, never an exception: ``http.cookies`` raises on ``a<b``, and
the locale middleware once turned every page into a 500 that way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from app.checkout import status
from app.money.models import OrderStatus
from app.settings import Settings
from app.web import raw
from app.web.factory import create_app
from tests.accounts.support import sign_up, users
from tests.webhooks.factories import make_order, session_factory

MALFORMED = b"lang=zh; a<b=1"
NOT_UTF8 = b"lang=zh; \xff\xfe=\xc3; x"


def _scope(*headers: tuple[bytes, bytes]) -> Any:
    return {"type": "http", "headers": list(headers)}


# --- header lookup -------------------------------------------------------------------------


def test_header_is_the_first_of_repeated_headers_and_none_when_missing() -> None:
    scope = _scope((b"x-one", b"first"), (b"x-one", b"second"), (b"x-two", b"\xff"))
    assert raw.header(scope, b"x-one") == b"first"
    assert raw.header_text(scope, b"x-one") == "first"
    assert raw.header(scope, b"x-missing") is None
    assert raw.header_text(scope, b"x-missing") is None
    assert raw.header_text(scope, b"x-two") == "\xff"  # latin-1: every byte is a character
    assert raw.header(_scope(), b"x-one") is None


def test_accepts_gzip() -> None:
    assert raw.accepts_gzip(_scope((b"accept-encoding", b"br, gzip;q=0.8")))
    assert not raw.accepts_gzip(_scope((b"accept-encoding", b"identity")))
    assert not raw.accepts_gzip(_scope())


# --- cookies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"lang=zh; session=abc", {"lang": "zh", "session": "abc"}),
        (MALFORMED, {"lang": "zh", "a<b": "1"}),
        (b"a<b=1; lang=zh", {"a<b": "1", "lang": "zh"}),
        (b"lang", {}),
        (b"lang=zh; bare; =; ;;", {"lang": "zh", "": ""}),
        (b'session="abc"; lang= zh ', {"session": "abc", "lang": "zh"}),
        (b"lang=en; lang=zh", {"lang": "zh"}),  # the last of a name wins, as in Litestar
        (b"session=a=b", {"session": "a=b"}),
        (b"", {}),
    ],
)
def test_parse_cookies_skips_what_it_cannot_read(header: bytes, expected: dict[str, str]) -> None:
    assert raw.parse_cookies(header) == expected
    assert raw.parse_cookies(header.decode("latin-1")) == expected


def test_cookie_bytes_that_are_not_utf8_never_raise() -> None:
    found = raw.parse_cookies(NOT_UTF8)
    assert found["lang"] == "zh"
    assert found["\xff\xfe"] == "\xc3"
    assert raw.cookies(_scope((b"cookie", NOT_UTF8)))["lang"] == "zh"


def test_cookies_come_from_the_first_cookie_header_only() -> None:
    """Litestar's ``request.cookies`` reads the first header; the fast paths must agree with it."""
    scope = _scope((b"cookie", b"lang=zh"), (b"cookie", b"session=abc"))
    assert raw.cookies(scope) == {"lang": "zh"}
    assert raw.cookies(_scope()) == {}
    assert raw.cookies(_scope((b"cookie", b""))) == {}


def test_live_session_id() -> None:
    assert raw.live_session_id("abc") == "abc"
    assert raw.live_session_id("null") is None  # what the middleware writes when it drops a session
    assert raw.live_session_id("") is None
    assert raw.live_session_id(None) is None


# --- sending -------------------------------------------------------------------------------


def _sent(**kwargs: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        messages.append(message)

    asyncio.run(raw.send_bytes(send, kwargs.pop("status", 200), [(b"x-a", b"1")], **kwargs))
    return messages


def test_send_bytes_sends_start_then_body_with_its_length() -> None:
    start, body = _sent(body=b"hello")
    assert start == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-a", b"1"), (b"content-length", b"5")],
    }
    assert body == {"type": "http.response.body", "body": b"hello", "more_body": False}


def test_send_bytes_for_head_and_without_length() -> None:
    start, body = _sent(body=b"hello", head=True)
    assert (b"content-length", b"5") in start["headers"]
    assert body["body"] == b""
    start, body = _sent(status=304, length=False)
    assert start["status"] == 304
    assert start["headers"] == [(b"x-a", b"1")]
    assert body["body"] == b""


# --- the fast paths with malformed cookies ---------------------------------------------------


@pytest.fixture
def client(sqlite_settings: Settings) -> Iterator[TestClient[Any]]:
    status.clear_caches()
    app = create_app(replace(sqlite_settings, stripe_api_base="http://127.0.0.1:9"))
    with TestClient(app, base_url="http://testserver.local") as test_client:
        yield test_client
    status.clear_caches()


def _fast_pricing_pages(locale: str) -> float:
    name = "storefront_pricing_page_cached_responses_total"
    return sum(
        REGISTRY.get_sample_value(name, {"locale": locale, "encoding": encoding}) or 0.0
        for encoding in ("identity", "gzip")
    )


@pytest.mark.parametrize("cookie", [MALFORMED, NOT_UTF8])
def test_pricing_page_with_a_malformed_cookie(client: TestClient[Any], cookie: bytes) -> None:
    """Anonymous: answered by the fast path, in the language of the readable ``lang`` cookie."""
    before = _fast_pricing_pages("zh")
    response = client.get("/", headers=[(b"cookie", cookie)])
    assert response.status_code == 200
    assert '<html lang="zh-Hans">' in response.text
    assert _fast_pricing_pages("zh") == before + 1


def test_signed_in_pricing_page_with_a_malformed_cookie(client: TestClient[Any]) -> None:
    """With a session the fast path steps aside; the full handler must not fail either."""
    sign_up(client, "poll@example.com")
    session = client.cookies["session"]
    client.cookies.clear()
    response = client.get("/", headers=[(b"cookie", b"session=" + session.encode() + b"; " + MALFORMED)])
    assert response.status_code == 200
    assert 'action="/sign-out"' in response.text


def test_status_poll_with_a_malformed_cookie_is_answered_from_memory(
    client: TestClient[Any], sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(client, "poll@example.com")
    [user] = users(sqlite_settings)

    async def paid_order() -> int:
        async with session_factory(sqlite_settings) as factory, factory() as db:
            order = await make_order(db, user, status=OrderStatus.PAID)
            await db.commit()
            return order.id

    order_id = asyncio.run(paid_order())
    url = f"/checkout/status/{order_id}?lang=en"
    first = client.get(url)  # the full handler: authorises the viewer, caches the final fragment
    assert first.status_code == status.STOP_POLLING
    session = client.cookies["session"]
    client.cookies.clear()

    async def not_the_fast_path(request: Any) -> int | None:
        raise AssertionError("the poll reached the full handler")

    monkeypatch.setattr(status, "viewer_id", not_the_fast_path)
    for cookie in (MALFORMED + b"; session=" + session.encode(), NOT_UTF8 + b"; session=" + session.encode()):
        again = client.get(url, headers=[(b"cookie", cookie)])
        assert again.status_code == status.STOP_POLLING
        assert again.content == first.content
