"""Every admin handler, mounted under ``/admin`` behind the admin guard.

To add a section, write its handlers in their own module (``app/admin/customers.py``, ...) with
paths relative to ``/admin`` and route names ``admin:<section>...``, and add them to
``ADMIN_HANDLERS`` below. The router's guard covers them; the nav shows a section as soon as a
route of its name (``admin:customers``, ``admin:events``, ``admin:catalogue``, ``admin:ledger``)
exists. Handlers may ask for ``admin`` (the signed-in admin ``User``). Every state change is a
POST (CSRF checked by the app's CSRFConfig) that writes an audit row (``app.admin.audit``);
``tests/admin/test_access.py`` walks the route table, so a new route is checked without
editing it.
"""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.di import Provide

from app.admin.access import admin_guard, provide_admin
from app.admin.audit_page import ROUTES as AUDIT_ROUTES
from app.admin.catalogue import ROUTES as CATALOGUE_ROUTES
from app.admin.customers import ROUTES as CUSTOMER_ROUTES
from app.admin.dashboard import ROUTES as DASHBOARD_ROUTES
from app.admin.events import ROUTES as EVENT_ROUTES
from app.admin.ledger import ROUTES as LEDGER_ROUTES
from app.admin.order_actions import ROUTES as ORDER_ACTION_ROUTES
from app.admin.orders import ROUTES as ORDER_ROUTES
from app.web.transactions import LONG_READS_OPT

__all__ = ("ADMIN_HANDLERS", "ADMIN_PATH", "admin_router")

ADMIN_PATH = "/admin"

ADMIN_HANDLERS: list[Any] = [
    *DASHBOARD_ROUTES,
    *ORDER_ROUTES,
    *ORDER_ACTION_ROUTES,
    *AUDIT_ROUTES,
    *CUSTOMER_ROUTES,
    *EVENT_ROUTES,
    *CATALOGUE_ROUTES,
    *LEDGER_ROUTES,
]


def admin_router() -> Router:
    """The console's router (one per app: the factory calls this)."""
    return Router(
        path=ADMIN_PATH,
        route_handlers=ADMIN_HANDLERS,
        guards=[admin_guard],
        dependencies={"admin": Provide(provide_admin)},
        include_in_schema=False,
        # Its reads count, search and export whole tables: never on the event loop (app.db.loop_reads).
        opt={LONG_READS_OPT: True},
    )
