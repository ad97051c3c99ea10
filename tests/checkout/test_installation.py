"""Two databases on one Stripe account (staging beside production, a restored copy) never send
the same idempotency key: each key carries the installation id its first migration made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from app.db.migrate import upgrade
from app.web.factory import create_app
from tests.conftest import make_settings
from tests.support.sandbox_server import TEST_KEY, SandboxServer, start_sandbox
from tests.support.servers import free_port, serve_in_thread
from tests.support.shop import Shop, sandbox_config


@contextmanager
def _shop_on(sandbox: SandboxServer, tmp_path: Path, database_url: str) -> Iterator[Shop]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        tmp_path, database_url, base_url=url, stripe_api_base=sandbox.url, stripe_secret_key=TEST_KEY
    )
    app = create_app(settings)
    with serve_in_thread(app, port):
        yield Shop(url=url, settings=settings, sandbox=sandbox, app=app)


def test_two_installations_on_one_stripe_account_both_start_their_first_order(
    migrated_url: str, tmp_path: Path
) -> None:
    other_url = f"sqlite+aiosqlite:///{tmp_path / 'other' / 'other.db'}"
    (tmp_path / "other").mkdir()
    upgrade(make_settings(tmp_path / "other", other_url))
    with ExitStack() as stack:
        sandbox = stack.enter_context(start_sandbox(sandbox_config("http://127.0.0.1:9", "whsec_unused")))
        shops = [
            stack.enter_context(_shop_on(sandbox, tmp_path / "a", migrated_url)),
            stack.enter_context(_shop_on(sandbox, tmp_path / "b", other_url)),
        ]
        for shop in shops:
            response = shop.buyer().sign_up().buy("coins-100")
            assert response.status_code == 303, response.text[:300]
            assert response.headers["location"].startswith(sandbox.url + "/c/pay/cs_")
            assert [row["id"] for row in shop.rows("SELECT id FROM purchase_order")] == [1]
        installations = [
            shop.rows("SELECT installation_id FROM installation")[0]["installation_id"] for shop in shops
        ]
        assert installations[0] != installations[1]
        keys = sandbox.call(lambda: list(sandbox.state.idempotency))
        for installation in installations:
            assert [key for key in keys if installation in key and "order-1-" in key], keys
