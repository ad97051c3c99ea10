"""The pricing page: ``GET /`` (and ``/pricing``, which redirects there)."""

from __future__ import annotations

import html
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.response import Redirect
from litestar.status_codes import HTTP_301_MOVED_PERMANENTLY
from litestar.utils.scope.state import ScopeState

from app import i18n
from app.accounts.models import User
from app.web.transactions import READ_ONLY_OPT

from .page_cache import PAGE_PATH, PricingPageCache


@get(PAGE_PATH, name="pricing", media_type=MediaType.HTML, include_in_schema=False, opt={READ_ONLY_OPT: True})
async def pricing_page(request: Request[Any, Any, Any], current_user: User | None) -> Response[bytes]:
    """The page for visitors with a session; ``pricing_fast_path`` answers everyone else first.

    The cached variant is used unless flash messages are waiting, which only
    this request may show (and consume).  Asking for ``current_user`` also
    applies the account's saved language when this browser chose none.
    """
    cache = PricingPageCache.of(request.app)
    session = request.scope.get("session")
    session = session if isinstance(session, dict) else {}
    signed_in = current_user is not None
    locale = i18n.current_locale()
    token = ScopeState.from_scope(request.scope).csrf_token
    token_text = token if isinstance(token, str) else ""
    headers = {"cache-control": "private, no-cache", "vary": "Accept-Encoding, Cookie"}
    if session.get("_messages"):
        body = cache.render(cache.holder.catalogue, locale, signed_in=signed_in, request=request)
        return Response(body.encode(), media_type=MediaType.HTML, headers=headers)
    # The cookie's value is echoed into HTML: escape it, although a valid token is plain hex.
    page = cache.page(locale, signed_in)
    return Response(page.html(html.escape(token_text).encode()), media_type=MediaType.HTML, headers=headers)


@get("/pricing", name="pricing-alias", sync_to_thread=False, include_in_schema=False)
def pricing_alias() -> Redirect:
    """Old and guessed links land on the one pricing page."""
    return Redirect(PAGE_PATH, status_code=HTTP_301_MOVED_PERMANENTLY)


ROUTES: list[Any] = [pricing_page, pricing_alias]
