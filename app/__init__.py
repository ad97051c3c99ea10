"""storefront: a self-hosted shop for coin and API-quota packs paid through Stripe Checkout.

``create_app()`` is the only way an application is made: ``litestar run``, the
``storefront`` CLI, the production server and the tests all call it. Importing a module
builds nothing: no app, engine, connection or file exists until ``create_app()`` runs.
"""

from __future__ import annotations

from litestar import Litestar

from app.settings import Settings
from app.web.factory import build_app

__all__ = ("create_app",)


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the shop from ``settings`` (default: read from the environment)."""
    return build_app(settings)
