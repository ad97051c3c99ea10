"""``/static``: the shop's few small assets, held in memory with a gzip copy made once.

Litestar's static router reads the file and the compression middleware would
gzip it again on every request; htmx alone is 50 KB.  Here each file is read
and compressed once per process (again when its mtime changes, so CSS edits
show up without a restart) and served with an ETag.  Names that carry a
version (``htmx-2.0.8.min.js``) or URLs with ``?v=`` are cached for a year;
others for an hour, then revalidated with ``If-None-Match``.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar import asgi
from litestar.handlers.asgi_handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from app.web.raw import accepts_gzip, header, send_bytes

__all__ = ["ROUTE_NAME", "StaticAssets", "static_assets_handler", "static_url"]

ROUTE_NAME: Final = "static"

_COMPRESSIBLE: Final = (".css", ".js", ".svg", ".html", ".json", ".txt", ".map", ".xml")
_VERSIONED_NAME: Final = re.compile(r"[-.]\d+\.\d+(\.\d+)?[-.]|[-.][0-9a-f]{8,}\.")
_LONG: Final = b"public, max-age=31536000, immutable"
_SHORT: Final = b"public, max-age=3600"


@dataclass(frozen=True, slots=True)
class _Asset:
    mtime_ns: int
    raw: bytes
    gz: bytes | None
    etag: bytes
    content_type: bytes
    versioned: bool


class StaticAssets:
    """Files under ``root``, loaded lazily and kept in memory; refuses anything outside ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._assets: dict[str, _Asset] = {}

    def _load(self, relative: str) -> _Asset | None:
        try:
            path = (self.root / relative).resolve()
            if not path.is_relative_to(self.root) or not path.is_file():
                return None
        except (OSError, ValueError):  # a name too long for the file system, say: no such file
            return None
        mtime = path.stat().st_mtime_ns
        cached = self._assets.get(relative)
        if cached is not None and cached.mtime_ns == mtime:
            return cached
        raw = path.read_bytes()
        gz = gzip.compress(raw, compresslevel=9, mtime=0) if path.suffix in _COMPRESSIBLE else None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or path.suffix == ".js":
            content_type += "; charset=utf-8"
        asset = _Asset(
            mtime_ns=mtime,
            raw=raw,
            gz=gz if gz is not None and len(gz) < len(raw) else None,
            etag=b'"' + hashlib.sha256(raw).hexdigest()[:20].encode() + b'"',
            content_type=content_type.encode(),
            versioned=bool(_VERSIONED_NAME.search(path.name)),
        )
        self._assets[relative] = asset
        return asset

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope = cast("dict[str, Any]", asgi_scope)
        relative = scope["path"].removeprefix("/static").lstrip("/")
        asset = self._load(relative) if relative and "\x00" not in relative else None
        method = scope["method"]
        if asset is None or method not in ("GET", "HEAD"):
            await send_bytes(send, 404 if asset is None else 405, [])
            return
        if_none_match = header(asgi_scope, b"if-none-match")
        versioned = asset.versioned or b"v=" in scope.get("query_string", b"")
        headers = [
            (b"cache-control", _LONG if versioned else _SHORT),
            (b"etag", asset.etag),
            (b"vary", b"Accept-Encoding"),
        ]
        if if_none_match is not None and asset.etag in if_none_match:
            await send_bytes(send, 304, headers, length=False)
            return
        body = asset.raw
        if asset.gz is not None and accepts_gzip(asgi_scope):
            body = asset.gz
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-type", asset.content_type))
        await send_bytes(send, 200, headers, body, head=method == "HEAD")


def static_assets_handler(root: Path) -> ASGIRouteHandler:
    """A mounted ASGI handler for ``/static`` serving ``root``."""
    assets = StaticAssets(root)

    @asgi("/static", is_mount=True, name=ROUTE_NAME, copy_scope=False)
    async def static(scope: Scope, receive: Receive, send: Send) -> None:
        await assets(scope, receive, send)

    return static


@pass_context
def static_url(context: Context, file_path: str) -> str:
    """Template global: the URL of a file under ``static/``.

    Litestar's ``url_for_static_asset`` only knows its own ``StaticFiles`` router; ours is a
    mounted ASGI handler, so its path comes from ``route_reverse`` like any route's.
    """
    root: str = context["request"].app.route_reverse(ROUTE_NAME)
    return f"{root.rstrip('/')}/{file_path.lstrip('/')}"
