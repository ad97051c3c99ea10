"""``/admin/catalogue``: the live catalogue as a table and, when the file on disk differs, how.

Editing stays in ``pricing.toml``: the page reads the file (in a thread: a small file, but
still disk I/O) and compares it per pack with what is being sold (``app.catalogue.diff``),
the same comparison ``storefront pricing diff`` prints.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, get
from litestar.response import Template

from app import i18n
from app.accounts.account_page import format_when
from app.admin.pages import admin_page
from app.catalogue.diff import compare_with_file
from app.catalogue.reload import CatalogueHolder
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES",)


@get("/catalogue", name="admin:catalogue", opt={READ_ONLY_OPT: True})
async def catalogue_page(request: Request[Any, Any, Any], catalogue: CatalogueHolder) -> Template:
    live = catalogue.catalogue
    compared = await anyio.to_thread.run_sync(compare_with_file, live, catalogue.path)
    locale = i18n.current_locale()
    context = {
        "live": live,
        "loaded": format_when(live.loaded_at, locale),
        "path": str(catalogue.path),
        "compared": compared,
        "locale": locale,
    }
    return admin_page(request, "catalogue.html", context, section="admin:catalogue")


ROUTES: list[Any] = [catalogue_page]
