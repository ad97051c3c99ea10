"""Guessable passwords are refused with a reason, at sign-up and in ``storefront users create-admin``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.accounts.cli import users_group
from app.accounts.service import password_problem
from app.settings import Settings, get_settings
from tests.accounts.support import client_for, post_form, user_count

COMMON = "one of the most common passwords"
GUESSABLE = "too easy to guess"
HAS_EMAIL = "must not contain your email address"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password", COMMON),
        ("12345678", COMMON),
        ("qwertyuiop", COMMON),
        (" " * 8, GUESSABLE),
        ("aaaaaaaaaaaa", GUESSABLE),
        ("eve@example.com", HAS_EMAIL),
        ("Eve@Example.com!", HAS_EMAIL),
    ],
)
def test_guessable_passwords_are_refused_with_a_reason(password: str, reason: str) -> None:
    problem = password_problem(password, "eve@example.com")
    assert problem is not None
    assert reason in problem


@pytest.mark.parametrize("password", ["correct horse battery", "secret pass", "x7#Lq2!vR9" * 50])
def test_strong_passwords_pass(password: str) -> None:
    assert password_problem(password, "eve@example.com") is None


def test_sign_up_refuses_a_common_password_in_both_languages(app_settings: Settings) -> None:
    with client_for(app_settings) as client:
        response = post_form(client, "/sign-up", email="eve@example.com", password="password")
        assert response.status_code == 400
        assert COMMON in response.text
    with client_for(app_settings, **{"accept-language": "zh"}) as client:
        response = post_form(client, "/sign-up", email="eve@example.com", password=" " * 8)
        assert response.status_code == 400
        assert "这个密码太容易被猜到" in response.text
        response = post_form(client, "/sign-up", email="eve@example.com", password="eve@example.com")
        assert "密码不能包含您的电子邮箱地址" in response.text
    assert user_count(app_settings) == 0


@pytest.fixture
def cli_env(app_settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    yield {"STOREFRONT_DATABASE_URL": app_settings.database_url, "STOREFRONT_VAR_DIR": str(tmp_path / "v")}
    get_settings.cache_clear()


def test_create_admin_refuses_a_common_password(app_settings: Settings, cli_env: dict[str, str]) -> None:
    given = CliRunner().invoke(
        users_group, ["create-admin", "root@example.com", "--password", "password"], env=cli_env
    )
    assert given.exit_code != 0
    assert COMMON in given.output
    asked = CliRunner().invoke(
        users_group, ["create-admin", "root@example.com"], input="12345678\n12345678\n", env=cli_env
    )
    assert asked.exit_code != 0
    assert COMMON in asked.output
    assert user_count(app_settings) == 0
