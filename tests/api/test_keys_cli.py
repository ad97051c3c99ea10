"""``storefront api-keys create / list / revoke`` against each migrated database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.api.cli import api_keys_group
from app.cli import StorefrontCLIPlugin
from app.settings import Settings, get_settings
from tests.api.support import api_client, assert_problem, bearer, rows


@pytest.fixture
def cli_env(api_settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    yield {
        "STOREFRONT_DATABASE_URL": api_settings.database_url,
        "STOREFRONT_VAR_DIR": str(tmp_path / "cli-var"),
        "STRIPE_SECRET_KEY": "",
    }
    get_settings.cache_clear()


def _create(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(api_keys_group, ["create", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


def test_create_prints_the_key_once_and_stores_its_hash_only(
    api_settings: Settings, cli_env: dict[str, str]
) -> None:
    key = _create(cli_env, "billing", "--scopes", "spend,read")
    assert key.startswith("sf_test_")
    assert len(key) > 40
    [row] = rows(api_settings, "SELECT * FROM server_key")
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["scopes"] == "read,spend"
    assert row["prefix"] == key[:16]
    assert key not in repr(row)
    with api_client(api_settings) as client:
        assert client.get("/api/v1/customers", headers=bearer(key)).status_code == 200


def test_a_live_stripe_key_makes_live_server_keys(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "STRIPE_SECRET_KEY": "sk_live_" + "a1B2" * 8}
    assert _create(env, "prod").startswith("sf_live_")


def test_two_keys_differ(cli_env: dict[str, str]) -> None:
    assert _create(cli_env, "a") != _create(cli_env, "b")


@pytest.mark.parametrize("scopes", ["", "read,admin", "write", ",,"])
def test_unknown_scopes_are_refused(api_settings: Settings, cli_env: dict[str, str], scopes: str) -> None:
    result = CliRunner().invoke(api_keys_group, ["create", "x", "--scopes", scopes], env=cli_env)
    assert result.exit_code == 2
    assert "scopes" in result.output
    assert rows(api_settings, "SELECT id FROM server_key") == []


def test_list_shows_keys_without_secrets(api_settings: Settings, cli_env: dict[str, str]) -> None:
    empty = CliRunner().invoke(api_keys_group, ["list"], env=cli_env)
    assert empty.exit_code == 0
    assert "No server keys" in empty.output
    key = _create(cli_env, "reporting", "--scopes", "read")
    with api_client(api_settings) as client:
        client.get("/api/v1/customers", headers=bearer(key))
    listed = CliRunner().invoke(api_keys_group, ["list"], env=cli_env)
    assert listed.exit_code == 0, listed.output
    header, line = listed.output.strip().splitlines()
    assert header.split() == ["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST", "USED", "REVOKED"]
    assert "reporting" in line
    assert key[:16] in line
    assert " read " in line
    assert key not in listed.output
    assert line.rstrip().endswith("-")  # not revoked
    assert line.count("-") >= 4  # created and last used are dates


def test_revoke_by_prefix_or_id(api_settings: Settings, cli_env: dict[str, str]) -> None:
    first, second = _create(cli_env, "one"), _create(cli_env, "two")
    result = CliRunner().invoke(api_keys_group, ["revoke", first[:16]], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "Revoked key" in result.output
    assert "one" in result.output
    [row_two] = rows(api_settings, "SELECT id FROM server_key WHERE name = 'two'")
    assert CliRunner().invoke(api_keys_group, ["revoke", str(row_two["id"])], env=cli_env).exit_code == 0
    again = CliRunner().invoke(api_keys_group, ["revoke", first[:16]], env=cli_env)
    assert again.exit_code == 1
    assert "no live key" in again.output
    with api_client(api_settings) as client:
        for key in (first, second):
            assert_problem(client.get("/api/v1/customers", headers=bearer(key)), 401, "invalid_api_key")
    listed = CliRunner().invoke(api_keys_group, ["list"], env=cli_env).output
    assert all(not line.rstrip().endswith(" -") for line in listed.splitlines()[1:])


def test_an_ambiguous_prefix_revokes_nothing(api_settings: Settings, cli_env: dict[str, str]) -> None:
    _create(cli_env, "one")
    _create(cli_env, "two")
    rows(api_settings, "UPDATE server_key SET prefix = 'sf_test_same'")
    result = CliRunner().invoke(api_keys_group, ["revoke", "sf_test_same"], env=cli_env)
    assert result.exit_code == 1
    assert "revoke by id" in result.output
    assert all(r["revoked_at"] is None for r in rows(api_settings, "SELECT revoked_at FROM server_key"))


def test_the_group_is_part_of_the_storefront_command() -> None:
    import click

    cli = click.Group()
    StorefrontCLIPlugin().on_cli_init(cli)
    assert cli.commands["api-keys"] is api_keys_group
    assert set(api_keys_group.commands) == {"create", "list", "revoke"}
