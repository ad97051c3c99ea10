"""Plain requests with bad input get a clear 4xx and change nothing, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import client_for, sign_up, users
from tests.web.route_table import asgi_mounts, endpoints

TOO_BIG = ["9223372036854775808", "99999999999999999999", "-9223372036854775809", "9" * 5000]


@pytest.fixture
def signed_in(sqlite_settings: Settings) -> Any:
    """A signed-in buyer, so that handlers get past the ``user`` dependency to the database."""
    with client_for(sqlite_settings) as client:
        assert sign_up(client, "bad-input@example.com").status_code in (302, 303)
        yield client


def test_static_name_too_long_for_the_file_system_is_404(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        assert client.get("/static/" + "a" * 300).status_code == 404
        assert client.get("/static/css/" + "b" * 5000 + ".css").status_code == 404


@pytest.mark.parametrize(
    "part",
    [
        b'Content-Disposition: form-data; name="email"\r\n\r\n\xff\xfe',
        b'Content-Disposition: form-data; name="email"\r\nContent-Type: text/plain; charset=nope\r\n\r\nx',
        b'Content-Disposition: form-data; name="_csrf_token"; filename="f.txt"\r\n\r\n' + b"a" * 80,
    ],
    ids=["invalid-utf8", "unknown-charset", "csrf-token-as-a-file"],
)
@pytest.mark.parametrize("path", ["/sign-in", "/sign-up", "/checkout", "/sign-out"])
def test_undecodable_multipart_field_is_400_and_changes_nothing(
    sqlite_settings: Settings, part: bytes, path: str
) -> None:
    body = b"--B\r\n" + part + b"\r\n--B--\r\n"
    with TestClient(create_app(sqlite_settings)) as client:
        response = client.post(
            path, content=body, headers={"content-type": "multipart/form-data; boundary=B"}
        )
    assert response.status_code == 400, response.text
    assert users(sqlite_settings) == []


def test_every_int_parameter_refuses_numbers_beyond_64_bits(signed_in: TestClient[Any]) -> None:
    app = signed_in.app
    assert not isinstance(app, type)
    checked = []
    for endpoint in endpoints(app):
        if endpoint.method != "GET":
            continue
        for name, kind in endpoint.path_params.items():
            if kind == "int":
                for value in TOO_BIG:
                    response = signed_in.get(endpoint.fill(**{name: value}), follow_redirects=False)
                    assert 400 <= response.status_code < 500, (
                        endpoint.path,
                        value[:30],
                        response.status_code,
                    )
                    checked.append(endpoint.path)
        for name, is_int in endpoint.query_params.items():
            if is_int:
                for value in TOO_BIG:
                    url = f"{endpoint.fill()}?{name}={value}"
                    response = signed_in.get(url, follow_redirects=False)
                    assert 400 <= response.status_code < 500, (url[:80], response.status_code)
                    checked.append(f"{endpoint.path}?{name}")
    assert {"/checkout/status/{order_id:int}", "/account?before", "/checkout/failed?order"} <= set(checked)


def test_int_in_range_still_reaches_the_handler(signed_in: TestClient[Any]) -> None:
    assert signed_in.get("/checkout/status/9223372036854775807").status_code == 404
    assert signed_in.get("/account?before=9223372036854775807").status_code == 200


def test_status_fast_path_with_thousands_of_digits_is_4xx(signed_in: TestClient[Any]) -> None:
    """The fast path (whose ``int()`` refuses 4,300+ digits) trusts a viewer it saw moments ago; a
    first poll puts this one in its cache. Litestar's router refuses such a path before it runs."""
    assert signed_in.get("/checkout/status/1").status_code == 404
    response = signed_in.get("/checkout/status/" + "1" * 5000)
    assert 400 <= response.status_code < 500


def test_malformed_cookie_is_never_a_5xx_on_any_route(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        app = client.app
        assert not isinstance(app, type)
        targets = [(e.method, e.fill()) for e in endpoints(app)]
        targets += [("GET", mount + "/") for mount in asgi_mounts(app)] + [("POST", "/webhooks/stripe")]
        for cookie in ("lang=zh; a<b=1", "session=; a<b=1; csrftoken=\x7f", 'lang="zh; =; ;;'):
            for method, path in targets:
                response = client.request(method, path, headers={"cookie": cookie}, follow_redirects=False)
                assert response.status_code < 500, (method, path, cookie, response.status_code)


@pytest.mark.parametrize("cookie", ["flash=abc.\u00e9", "flash=abc.%C3%A9", "flash=\u00e9.\u00e9"])
def test_a_flash_cookie_with_non_ascii_text_is_ignored(sqlite_settings: Settings, cookie: str) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        for path in ("/", "/pricing", "/sign-in"):
            response = client.get(path, headers={"cookie": cookie.encode()}, follow_redirects=False)
            assert response.status_code < 500, (path, response.status_code)
