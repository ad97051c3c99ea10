"""The shop's identity from settings, its Markdown policies rendered safely, and error pages
that keep the signed-in buyer's header."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from litestar import get
from litestar.testing import TestClient

from app.settings import Settings
from app.web.factory import create_app
from tests.accounts.support import client_for, sign_up


def test_name_logo_favicon_support_and_policies_come_from_settings(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    terms = tmp_path / "terms.md"
    terms.write_text(
        "# Our terms\n\n{shop_name} answers at {support_email}.\n\n"
        "<script>alert(1)</script> <b onclick=x>bold?</b>\n\n[click](javascript:alert(1))\n",
        encoding="utf-8",
    )
    (tmp_path / "terms.zh.md").write_text("# 我们的条款\n\n{shop_name}\n", encoding="utf-8")
    settings = replace(
        sqlite_settings,
        shop_name="Acme Coins",
        support_email="help@acme.example",
        logo="brand/logo.svg",
        terms_path=terms,
    )
    with client_for(settings, Accept="text/html") as client:
        page = client.get("/terms")
        assert page.status_code == 200
        html = page.text
        assert "<title>Our terms" not in html  # the title is the policy's name, the heading the file's
        assert "<h1>Our terms</h1>" in html
        assert '<a href="mailto:help@acme.example">help@acme.example</a>' in html
        assert "Acme Coins answers at" in html
        # Raw HTML is shown as text and a javascript: link is not a link.
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<b onclick" not in html
        assert 'href="javascript:' not in html
        # The layout: name, logo, favicon, footer links to every policy and the support address.
        assert "Terms of service · Acme Coins</title>" in html
        assert 'rel="icon" href="/static/brand/favicon.svg"' in html
        assert '<img src="/static/brand/logo.svg" alt=""' in html
        for path in ("/terms", "/privacy", "/refunds"):
            assert f'href="{path}"' in html
        assert 'href="mailto:help@acme.example"' in html.split("<footer", 1)[1]
        # A Chinese page reads terms.zh.md; the shipped policies have both languages.
        client.cookies.set("lang", "zh")
        assert "<h1>我们的条款</h1>" in client.get("/terms").text
        assert "<h1>隐私政策</h1>" in client.get("/privacy").text
        assert "<h1>退款政策</h1>" in client.get("/refunds").text
        assert client.get("/static/brand/logo.svg").headers["content-type"].startswith("image/svg+xml")


def test_missing_policy_file_is_a_404_not_a_crash(sqlite_settings: Settings, tmp_path: Path) -> None:
    settings = replace(sqlite_settings, privacy_path=tmp_path / "gone.md")
    with client_for(settings, Accept="text/html") as client:
        assert client.get("/privacy").status_code == 404


def test_error_pages_keep_the_signed_in_buyers_header(sqlite_settings: Settings) -> None:
    settings = replace(sqlite_settings, stripe_api_base="http://127.0.0.1:9")
    with client_for(settings, Accept="text/html") as client:
        anonymous = client.get("/no/such/page")
        assert anonymous.status_code == 404
        assert 'href="/sign-in"' in anonymous.text
        assert sign_up(client, "header@example.com").status_code == 303
        missing = client.get("/no/such/page")
        assert missing.status_code == 404
        header = missing.text.split("</header>", 1)[0]
        assert 'href="/account"' in header
        assert 'action="/sign-out"' in header
        assert 'name="_csrf_token" value="' in header
        assert 'value=""' not in header
        # A form from elsewhere (no CSRF token): 403, and still the buyer's own header.
        forged = client.post("/checkout", data={"pack": "coins-100"})
        assert forged.status_code == 403
        assert 'href="/account"' in forged.text.split("</header>", 1)[0]
        assert "Not allowed" in forged.text
        # The sign-out form on the 404 page works.
        token = header.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
        out = client.post("/sign-out", data={"_csrf_token": token}, follow_redirects=False)
        assert out.status_code in (302, 303)
        assert 'href="/sign-in"' in client.get("/no/such/page").text.split("</header>", 1)[0]


def test_a_500_page_keeps_the_signed_in_buyers_header(sqlite_settings: Settings) -> None:
    @get("/boom", name="boom")
    async def boom() -> None:
        raise RuntimeError("our fault")

    app = create_app(replace(sqlite_settings, stripe_api_base="http://127.0.0.1:9"))
    app.register(boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Accept"] = "text/html"
        assert sign_up(client, "fault@example.com").status_code == 303
        page = client.get("/boom")
        assert page.status_code == 500
        assert "Something went wrong" in page.text
        assert 'href="/account"' in page.text.split("</header>", 1)[0]
