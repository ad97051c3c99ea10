"""``storefront users create-admin`` and ``users list`` against a migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.accounts.cli import users_group
from app.settings import Settings, get_settings
from tests.accounts.support import client_for, sign_in, sign_up, users


@pytest.fixture
def cli_env(app_settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    yield {
        "STOREFRONT_DATABASE_URL": app_settings.database_url,
        "STOREFRONT_VAR_DIR": str(tmp_path / "cli-var"),
    }
    get_settings.cache_clear()


def test_create_admin_with_password(app_settings: Settings, cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        users_group, ["create-admin", " Root@Example.com", "--password", "admin password"], env=cli_env
    )
    assert result.exit_code == 0, result.output
    assert "Created admin root@example.com" in result.output
    [user] = users(app_settings)
    assert (user.email, user.is_admin) == ("root@example.com", True)
    with client_for(app_settings) as client:
        assert sign_in(client, "root@example.com", password="admin password").status_code == 303


def test_create_admin_prompts_twice_for_the_password(app_settings: Settings, cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        users_group, ["create-admin", "boss@example.com"], input="secret pass\nsecret pass\n", env=cli_env
    )
    assert result.exit_code == 0, result.output
    assert "Password" in result.output
    assert "Repeat for confirmation" in result.output
    assert [u.email for u in users(app_settings) if u.is_admin] == ["boss@example.com"]


def test_create_admin_promotes_an_existing_user(app_settings: Settings, cli_env: dict[str, str]) -> None:
    with client_for(app_settings) as client:
        sign_up(client, "pat@example.com")
    result = CliRunner().invoke(users_group, ["create-admin", "pat@example.com"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "now an admin" in result.output
    [user] = users(app_settings)
    assert user.is_admin
    listed = CliRunner().invoke(users_group, ["list"], env=cli_env)
    assert listed.exit_code == 0
    assert "pat@example.com\tadmin" in listed.output


@pytest.mark.parametrize(
    "args",
    [
        ["create-admin", "not-an-email", "--password", "long enough"],
        ["create-admin", "a@b.co", "--password", "x"],
    ],
)
def test_create_admin_refuses_bad_input(
    app_settings: Settings, cli_env: dict[str, str], args: list[str]
) -> None:
    result = CliRunner().invoke(users_group, args, env=cli_env)
    assert result.exit_code != 0
    assert users(app_settings) == []
