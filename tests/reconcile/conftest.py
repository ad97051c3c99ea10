from tests.checkout.conftest import _fresh_status_caches, shop, sqlite_shop  # noqa: F401
