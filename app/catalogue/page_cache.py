"""The pricing page, rendered once per (language, catalogue version, signed in or not).

The page is the shop's front door and the catalogue changes rarely, so the
HTML is rendered once with a placeholder where the per-visitor CSRF token goes
and split into fixed byte segments.  A request only joins the segments around
its token.  The gzip variant is prepared the same way: every fixed segment is
deflated once (ending on a byte boundary with a sync flush) and the token is
spliced in as an uncompressed "stored" deflate block, so a compressed page
costs a join and a CRC per request instead of a compression run.

``pricing_fast_path`` serves anonymous visitors (no session cookie) straight
from this cache, before the session middleware could touch the database;
everyone else goes through the ordinary route handler, which uses the same
cache.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import struct
import zlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Final, cast

from jinja2 import Environment
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures.cookie import Cookie
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState
from prometheus_client import Counter

from app import i18n
from app.web import raw

from .model import Catalogue
from .reload import CatalogueHolder
from .views import pricing_sections

__all__ = ["PLACEHOLDER", "PricingPageCache", "RenderedPage", "pricing_fast_path"]

TEMPLATE: Final = "catalogue/pricing.html"
PAGE_PATH: Final = "/"
PLACEHOLDER: Final = "csrf0placeholder0b7f3e9d"
"""Stands in for the CSRF token while rendering; plain ASCII, so escaping leaves it alone."""
STATE_KEY: Final = "pricing_page_cache"

# The fast path runs before Litestar's Prometheus middleware (which would cost a third of its
# throughput), so it counts its own responses; created once per process, not per app.
FAST_PATH_RESPONSES: Final = Counter(
    "storefront_pricing_page_cached_responses",
    "Pricing pages served from the cache to visitors without a session",
    ["locale", "encoding"],
)

_TOKEN_RE: Final = re.compile(r"[0-9a-f]{128}")
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # no name, no mtime, max compression
_LAST_BLOCK: Final = b"\x01\x00\x00\xff\xff"  # empty final stored block: ends the deflate stream
_HTML: Final = b"text/html; charset=utf-8"


def _deflate_segment(data: bytes) -> bytes:
    """Raw deflate of ``data`` ending byte-aligned and not final, so segments can be concatenated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _stored_block(data: bytes) -> bytes:
    """``data`` as one uncompressed, non-final deflate block (data must be < 64 KiB)."""
    size = len(data)
    return b"\x00" + struct.pack("<HH", size, size ^ 0xFFFF) + data


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One rendered variant, split where the CSRF token goes."""

    parts: tuple[bytes, ...]
    deflated: tuple[bytes, ...]

    @classmethod
    def from_html(cls, html: str) -> RenderedPage:
        parts = tuple(part.encode() for part in html.split(PLACEHOLDER))
        return cls(parts=parts, deflated=tuple(_deflate_segment(part) for part in parts))

    def html(self, token: bytes) -> bytes:
        return token.join(self.parts)

    def gzip(self, token: bytes) -> bytes:
        """The page as a gzip member, without compressing anything now."""
        raw = token.join(self.parts)
        body = _stored_block(token).join(self.deflated)
        trailer = struct.pack("<II", zlib.crc32(raw), len(raw) & 0xFFFFFFFF)
        return b"".join((_GZIP_HEADER, body, _LAST_BLOCK, trailer))


class _PlaceholderRequest:
    """Stands in for the request while rendering a cached variant: the token is the placeholder.

    It carries the app because ``url_for`` in the templates asks the app for route paths.
    """

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.scope: dict[str, Any] = {"query_string": b"", "state": {}}
        self.url = SimpleNamespace(path=PAGE_PATH)
        ScopeState.from_scope(self.scope).csrf_token = PLACEHOLDER  # type: ignore[arg-type]


class PricingPageCache:
    """Rendered pricing pages for one app; emptied whenever the catalogue changes."""

    def __init__(
        self, app: Litestar, holder: CatalogueHolder, environment: Environment, csrf: CSRFConfig
    ) -> None:
        self.app = app
        self.holder = holder
        self.environment = environment
        self.csrf = csrf
        self.automatic_tax: bool = app.state["settings"].automatic_tax
        self._pages: dict[tuple[str, str, bool], RenderedPage] = {}
        self.renders = 0  # how many variants were rendered; tests watch it
        holder.subscribe(self._catalogue_changed)
        cookie = Cookie(
            key=csrf.cookie_name,
            value=PLACEHOLDER,
            path=csrf.cookie_path,
            secure=csrf.cookie_secure,
            httponly=csrf.cookie_httponly,
            samesite=csrf.cookie_samesite,
            domain=csrf.cookie_domain,
        )
        self._cookie_parts = tuple(cookie.to_header(header="").encode("latin-1").split(PLACEHOLDER.encode()))
        self.cookie_name = csrf.cookie_name
        self._secret = csrf.secret.encode()

    @classmethod
    def of(cls, app: Litestar) -> PricingPageCache:
        """The app's cache, made on first use (it needs the app's template engine and CSRF config)."""
        cache = app.state.get(STATE_KEY)
        if cache is None:
            engine: Any = app.template_engine
            assert app.csrf_config is not None, "the pricing page needs CSRF protection configured"
            cache = cls(app, app.state["catalogue"], engine.engine, app.csrf_config)
            app.state[STATE_KEY] = cache
        assert isinstance(cache, PricingPageCache)
        return cache

    def _catalogue_changed(self, catalogue: Catalogue) -> None:
        # Keys carry the version, so stale pages could never be served; this frees them.
        self._pages = {}

    def page(self, locale: str, signed_in: bool) -> RenderedPage:
        catalogue = self.holder.catalogue
        key = (locale, catalogue.version, signed_in)
        page = self._pages.get(key)
        if page is None:
            page = RenderedPage.from_html(self.render(catalogue, locale, signed_in=signed_in))
            self._pages[key] = page
        return page

    def render(
        self, catalogue: Catalogue, locale: str, *, signed_in: bool, request: Any = None, **extra: Any
    ) -> str:
        """Render the page for ``locale``; without ``request`` the CSRF token is the placeholder."""
        previous = i18n.current_locale()
        i18n.set_locale(locale)
        try:
            html = self.environment.get_template(TEMPLATE).render(
                sections=pricing_sections(catalogue, locale, automatic_tax=self.automatic_tax),
                current_user=signed_in,
                request=request or _PlaceholderRequest(self.app),
                request_path=PAGE_PATH,
                **extra,
            )
        finally:
            i18n.set_locale(previous)
        if request is None:
            self.renders += 1
        return html

    # --- CSRF tokens, exactly as Litestar's CSRFMiddleware makes and checks them ----

    def new_token(self) -> str:
        token = secrets.token_hex(32)
        return token + hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    def valid_token(self, token: str) -> bool:
        if not _TOKEN_RE.fullmatch(token):
            return False
        expected = hmac.new(self._secret, token[:64].encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, token[64:])

    def cookie_header(self, token: bytes) -> tuple[bytes, bytes]:
        return (b"set-cookie", token.join(self._cookie_parts))


def pricing_fast_path(app: ASGIApp) -> ASGIApp:
    """Serve ``GET /`` to visitors without a session straight from the cache.

    Such a visitor cannot be signed in and has no flash messages, so the page
    depends only on the language (set by ``locale_middleware``, which must run
    first) and the CSRF token.  The session, CSRF and compression middleware
    are skipped; this path does what they would have done for this request.
    """

    async def middleware(asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope = cast("dict[str, Any]", asgi_scope)
        if scope["type"] != "http" or scope["path"] != PAGE_PATH or scope["method"] not in ("GET", "HEAD"):
            await app(asgi_scope, receive, send)
            return
        cookies = raw.cookies(asgi_scope)
        if raw.live_session_id(cookies.get(raw.SESSION_COOKIE)) or raw.FLASH_COOKIE in cookies:
            await app(asgi_scope, receive, send)
            return
        gzip_ok = raw.accepts_gzip(asgi_scope)
        cache = PricingPageCache.of(scope["app"])
        token = cookies.get(cache.cookie_name, "")
        headers = [
            (b"content-type", _HTML),
            (b"cache-control", b"private, no-cache"),
            (b"vary", b"Accept-Encoding, Cookie"),
        ]
        if not cache.valid_token(token):
            token = cache.new_token()
            headers.append(cache.cookie_header(token.encode()))
        locale = scope.get("state", {}).get("locale", i18n.DEFAULT)
        page = cache.page(locale, False)
        FAST_PATH_RESPONSES.labels(locale, "gzip" if gzip_ok else "identity").inc()
        if gzip_ok:
            body = page.gzip(token.encode())
            headers.append((b"content-encoding", b"gzip"))
        else:
            body = page.html(token.encode())
        await raw.send_bytes(send, 200, headers, body, head=scope["method"] == "HEAD")

    return middleware
