"""storefront: a self-hosted shop for coin and API-quota packs paid through Stripe Checkout.

``create_app()`` is the only way an application is made: ``litestar run``, the
``storefront`` CLI, the production server and the tests all call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar

    from app.settings import Settings

__all__ = ("create_app",)


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the shop; heavy imports wait until here so importing ``app`` stays cheap."""
    from app.web.factory import build_app

    return build_app(settings)
