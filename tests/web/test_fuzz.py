"""A bounded, seeded fuzz over every route: thousands of odd requests, not one 5xx.

Routes come from the app's route table (and the mounted sandbox's), so a new route is fuzzed
without editing this file. Each request mixes a method, a path with odd parameter values, a
query, headers, cookies (valid session and CSRF ones, malformed ones) and a body in some
content type. The seed is fixed so a failure replays; ``FUZZ_SEED`` picks another.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import replace
from urllib.parse import quote

from litestar.testing import TestClient

from app.sandbox.app import create_sandbox_app
from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import sign_up
from tests.web.route_table import Endpoint, asgi_mounts, endpoints

REQUESTS = 5_000
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
FIELDS = ["email", "password", "pack", "next", "_csrf_token", "lang", "name", "card", "method", "x"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=B",
    "multipart/form-data",  # no boundary
    "multipart/form-data; boundary=",
    "application/json",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded; charset=nope",
    "garbage/;;;=",
    "",
]


class Fuzzer:
    """Makes one odd request at a time from a seeded ``random.Random``."""

    def __init__(self, rng: random.Random, routes: list[Endpoint], extra_paths: list[str]) -> None:
        self.rng = rng
        self.routes = routes
        self.extra_paths = extra_paths
        self.session = ""
        self.csrf = ""

    def text(self) -> str:
        rng = self.rng
        return rng.choice(
            [
                "",
                "x",
                "en",
                "zh",
                "0",
                "-1",
                "1",
                str(rng.randint(-(2**70), 2**70)),
                "9" * rng.choice([19, 20, 400, 5000]),
                "1e9",
                "NaN",
                "true",
                "a" * rng.choice([100, 300, 5000]),
                "../../etc/passwd",
                "%00",
                "<script>alert(1)</script>",
                "é中文🙂",
                "\x7f\x01",
                "//evil.example/",
                "https://evil.example/",
                "a@b.c",
                "starter",
                "cs_test_" + "x" * 24,
            ]
        )

    def raw_bytes(self) -> bytes:
        rng = self.rng
        return rng.choice(
            [b"\xff\xfe", b"\xc3", bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64))), b"\x00", b""]
        )

    def path(self) -> tuple[str, Endpoint | None]:
        rng = self.rng
        if rng.random() < 0.15:
            base = rng.choice(self.extra_paths)
            return base.rstrip("/") + rng.choice(["", "/", "/" + quote(self.text(), safe="")]), None
        route = rng.choice(self.routes)
        values = {name: quote(self.text(), safe="") for name in route.path_params if rng.random() < 0.7}
        return route.fill(**values), route

    def query(self, route: Endpoint | None) -> str:
        rng = self.rng
        names = [*(route.query_params if route else ()), *rng.sample(FIELDS, 2)]
        pairs = []
        for name in names:
            if rng.random() < 0.6:
                value = "%FF%FE" if rng.random() < 0.1 else quote(self.text(), safe="")
                pairs.append(f"{name}={value}")
        if rng.random() < 0.05:
            pairs.append("&&=&%zz")
        return "?" + "&".join(pairs) if pairs else ""

    def cookies(self) -> str:
        rng = self.rng
        parts = []
        if self.session and rng.random() < 0.4:
            parts.append(f"session={self.session}")
        if self.csrf and rng.random() < 0.5:
            parts.append(f"csrftoken={self.csrf}")
        if rng.random() < 0.3:
            parts.append(f"lang={rng.choice(['en', 'zh', 'xx', ''])}")
        if rng.random() < 0.2:
            parts.append(
                rng.choice(["a<b=1", "session=null", 'x="unterminated', "=;", "session=" + self.text()])
            )
        rng.shuffle(parts)
        return "; ".join(parts)

    def headers(self) -> dict[str, str]:
        rng = self.rng
        headers: dict[str, str] = {}
        cookie = self.cookies()
        if cookie:
            headers["cookie"] = cookie
        options = {
            "accept": ["text/html", "application/json", "*/*", "", "text/html;q=x"],
            "accept-language": ["zh-CN,zh;q=0.9", "en", "xx", ";;;", "*", "zh;q=abc"],
            "accept-encoding": ["gzip", "br", "gzip;q=0", ""],
            "hx-request": ["true", "false", ""],
            "x-request-id": ["a" * 65, "id", ""],
            "if-none-match": ['"x"', "*", ""],
            "authorization": ["Bearer sk_test_fuzz", "Bearer", "Basic Zm9v", ""],
            "stripe-signature": ["t=1,v1=00", "garbage", ""],
            "range": ["bytes=0-1", "bytes=x"],
        }
        for name, values in options.items():
            if rng.random() < 0.25:
                headers[name] = rng.choice(values)
        if self.csrf and rng.random() < 0.2:
            headers["x-csrftoken"] = self.csrf
        return headers

    def body(self, headers: dict[str, str]) -> bytes:
        rng = self.rng
        content_type = rng.choice(CONTENT_TYPES)
        if content_type:
            headers["content-type"] = content_type
        fields = {name: self.text() for name in rng.sample(FIELDS, rng.randint(0, 4))}
        if self.csrf and rng.random() < 0.6:
            fields["_csrf_token"] = self.csrf
        if content_type.startswith("multipart"):
            parts = []
            for name, value in fields.items():
                raw = self.raw_bytes() if rng.random() < 0.2 else value.encode("utf-8", "surrogatepass")
                extra = rng.choice(["", "\r\nContent-Type: text/plain; charset=nope", '; filename="f.txt"'])
                parts.append(
                    f'--B\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode() + raw
                )
            tail = b"\r\n--B--\r\n" if rng.random() < 0.9 else b""
            return b"\r\n".join(parts) + tail
        if content_type == "application/json":
            return rng.choice([json.dumps(fields).encode(), b"{", b"[]", b"null"])
        if content_type.startswith("application/x-www-form-urlencoded"):
            encoded = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in fields.items()).encode()
            return encoded + (b"&bad=%FF%FE" if rng.random() < 0.2 else b"")
        return self.raw_bytes()

    def request(self) -> tuple[str, str, dict[str, str], bytes]:
        rng = self.rng
        path, route = self.path()
        method = route.method if route is not None and rng.random() < 0.8 else rng.choice(METHODS)
        headers = self.headers()
        body = self.body(headers) if method in ("POST", "PUT", "PATCH") or rng.random() < 0.05 else b""
        return method, path + self.query(route), headers, body


def _sandbox_paths() -> list[str]:
    return ["/sandbox" + e.fill() for e in endpoints(create_sandbox_app())]


def test_fuzzed_requests_on_every_route_never_answer_5xx(sqlite_settings: Settings) -> None:
    settings = replace(sqlite_settings, stripe_api_base="")  # the sandbox stays mounted
    rng = random.Random(SEED)
    failures: list[str] = []
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        app = client.app
        assert not isinstance(app, type)
        routes = endpoints(app)
        fuzzer = Fuzzer(rng, routes, [*asgi_mounts(app), *_sandbox_paths(), "/static/css/site.css", "/nope"])
        assert sign_up(client, "fuzz@example.com").status_code in (302, 303)
        fuzzer.session = client.cookies["session"]
        fuzzer.csrf = client.cookies["csrftoken"]
        started = time.monotonic()
        covered: set[str] = set()
        for _ in range(REQUESTS):
            method, url, headers, body = fuzzer.request()
            client.cookies.clear()  # each request carries exactly the cookies the fuzzer chose
            raw_headers = {name: value.encode() for name, value in headers.items()}  # UTF-8 bytes too
            response = client.request(method, url, headers=raw_headers, content=body, follow_redirects=False)
            covered.add(url.split("?")[0])
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {method} {url[:120]} {headers} {body[:120]!r}")
        elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {REQUESTS} requests answered 5xx:\n" + "\n".join(failures[:20])
    for route in routes:
        assert any(path.startswith(route.path.split("{")[0]) for path in covered), route.path
    print(f"fuzz: {REQUESTS} requests in {elapsed:.1f}s, seed {SEED}")
