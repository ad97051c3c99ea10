"""storefront: a self-hosted shop for coin and API-quota packs paid through Stripe Checkout.

``app.web.factory.create_app()`` is the only way an application is made: ``litestar run``,
the ``storefront`` CLI, the production server (``app.asgi``) and the tests all call it.
Importing a module builds nothing, and this package imports nothing: importing
``app.sandbox`` (which imports nothing of the shop) must not load the shop.
"""
