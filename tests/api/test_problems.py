"""Every error under /api is an RFC 9457 problem with a stable code; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import get
from litestar.testing import TestClient
from structlog.testing import capture_logs

from app.settings import Settings
from app.web.factory import create_app
from tests.api.support import api_client, assert_problem, make_key, rows

JSON = {"content-type": "application/json"}


def test_unknown_paths_and_methods(client: TestClient[Any]) -> None:
    assert_problem(client.get("/api/v1/nothing"), 404, "not_found")
    assert_problem(client.get("/api/v1/customers/a/b/c"), 404, "not_found")
    assert_problem(client.get("/api/nothing"), 404, "not_found")
    assert_problem(client.get("/api/v2/customers"), 404, "not_found")
    assert_problem(client.delete("/api/v1/customers/abc"), 405, "method_not_allowed")
    assert_problem(client.post("/api/v1/customers/abc", json={}), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (b"{bad", 400, "malformed_json", None),
        (b"", 400, "malformed_json", None),
        (b'{"email": "a@example.com"', 400, "malformed_json", None),
        (b"\xff\xfe", 400, "malformed_json", None),
        (b"[1, 2]", 422, "invalid_request", None),
        (b'"text"', 422, "invalid_request", None),
        (b'{"email": "a@example.com", "admin": true}', 422, "invalid_request", "admin"),
        (b'{"email": 12}', 422, "invalid_request", "email"),
        (b'{"email": "a@example.com", "name": "' + b"n" * 201 + b'"}', 422, "invalid_request", "name"),
        (b'{"email": "a@example.com", "metadata": {"k": 1}}', 422, "invalid_request", None),
        (
            b'{"email": "a@example.com", "metadata": {"k": 1' + b"0" * 400 + b"}}",
            422,
            "invalid_request",
            None,
        ),
        (b'{"email": 1e999}', 400, "malformed_json", None),
        (b'{"email": "a@example.com", "name": ' + b"9" * 5000 + b"}", 400, "malformed_json", None),
        (b'{"email": "a@example.com", "name": 12345678901234567890123}', 422, "invalid_request", "name"),
        (b'{"email": "not an email"}', 422, "invalid_email", "email"),
        (b"{}", 422, "email_required", "email"),
    ],
)
def test_bad_bodies_are_4xx_and_change_nothing(
    client: TestClient[Any], api_settings: Settings, body: bytes, status: int, code: str, param: str | None
) -> None:
    response = client.put("/api/v1/customers/abc", content=body, headers=JSON)
    problem = assert_problem(response, status, code, param)
    assert "Traceback" not in problem.get("detail", "")
    assert rows(api_settings, "SELECT id FROM user_account") == []


def test_metadata_limits(client: TestClient[Any]) -> None:
    many = {f"k{n}": "v" for n in range(51)}
    assert_problem(
        client.put("/api/v1/customers/a", json={"email": "a@x.io", "metadata": many}), 422, "invalid_request"
    )
    long_key = {"k" * 41: "v"}
    assert_problem(
        client.put("/api/v1/customers/a", json={"email": "a@x.io", "metadata": long_key}),
        422,
        "invalid_request",
    )
    ok = client.put(
        "/api/v1/customers/a", json={"email": "a@x.io", "metadata": {f"k{n}": "v" for n in range(50)}}
    )
    assert ok.status_code == 201, ok.text


def test_wrong_content_type_is_415(client: TestClient[Any], api_settings: Settings) -> None:
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "multipart/form-data; boundary=x",
    ):
        response = client.put(
            "/api/v1/customers/abc",
            content=b'{"email": "a@example.com"}',
            headers={"content-type": content_type},
        )
        assert_problem(response, 415, "unsupported_media_type")
    ok = client.put(
        "/api/v1/customers/abc",
        content=b'{"email": "a@example.com"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 201
    assert len(rows(api_settings, "SELECT id FROM user_account")) == 1


def test_oversized_bodies_are_413(client: TestClient[Any], api_settings: Settings) -> None:
    huge = b'{"email": "a@example.com", "name": "' + b"x" * 70_000 + b'"}'
    assert_problem(client.put("/api/v1/customers/abc", content=huge, headers=JSON), 413, "request_too_large")
    assert rows(api_settings, "SELECT id FROM user_account") == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=" + "9" * 40,
        "cursor=%25%25%25",
        "cursor=" + "A" * 600,
    ],
)
def test_bad_page_parameters_are_422(client: TestClient[Any], query: str) -> None:
    response = client.get("/api/v1/customers?" + query)
    body = assert_problem(
        response, 422, "invalid_cursor" if query.startswith("cursor=%") else "invalid_request"
    )
    assert body.get("param") in ("limit", "cursor")


@pytest.mark.parametrize("external_id", ["a b", "x" * 256, "é", "a\\b", "<script>", "a;b"])
def test_bad_external_ids_are_422(client: TestClient[Any], external_id: str) -> None:
    response = client.put(f"/api/v1/customers/{external_id}", json={"email": "a@example.com"})
    assert_problem(response, 422, "invalid_request", "external_id")


def test_our_faults_are_500_without_internals(api_settings: Settings) -> None:
    @get("/api/v1/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("secret internals: postgres://user:password@db")

    app = create_app(api_settings)
    app.register(boom)
    with TestClient(app) as client:
        response = client.get("/api/v1/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"]


def test_problem_bodies_carry_the_rfc_fields(client: TestClient[Any]) -> None:
    body = assert_problem(client.get("/api/v1/customers/nobody"), 404, "customer_not_found", "external_id")
    assert set(body) == {"type", "title", "status", "code", "detail", "param"}


def test_unknown_query_parameters_are_422(client: TestClient[Any]) -> None:
    assert_problem(client.get("/api/v1/customers?limt=5"), 422, "unknown_parameter", "limt")
    assert_problem(client.get("/api/v1/customers/x?expand=all"), 422, "unknown_parameter", "expand")
    assert client.get("/api/v1/customers?limit=5").status_code == 200


def test_options_lists_the_methods_without_a_key(api_settings: Settings) -> None:
    with TestClient(create_app(api_settings)) as anonymous:
        response = anonymous.options("/api/v1/customers/abc")
    assert response.status_code == 204
    assert "PUT" in response.headers["allow"]


def test_query_names_are_worked_out_once_per_route(client: TestClient[Any]) -> None:
    context = client.app.state["api"]
    for _ in range(5):
        assert client.get("/api/v1/customers?limit=3").status_code == 200
        # (GET /api/v1/customers/x itself is answered by its hot path, app/api/hot.py)
        assert client.get("/api/v1/customers/x/entries").status_code == 404
    assert len(context.query_names) == 2


def test_a_client_that_hangs_up_mid_body_is_a_quiet_4xx(sqlite_api_settings: Settings) -> None:
    """wrk and impatient clients drop connections; that is not our fault, so no 500 and no traceback."""
    key = make_key(sqlite_api_settings)
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/customers/gone/debits",
        "raw_path": b"/api/v1/customers/gone/debits",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver.local"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"40"),
            (b"idempotency-key", b"gone-1"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver.local", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with api_client(sqlite_api_settings) as client, capture_logs() as logs:
        client.blocking_portal.call(client.app, scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert 400 <= start["status"] < 500
    assert not [entry for entry in logs if entry.get("log_level") in ("error", "exception", "critical")]
    assert rows(sqlite_api_settings, "SELECT count(*) AS n FROM ledger_entry")[0]["n"] == 0
