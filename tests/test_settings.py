"""Settings: development makes and keeps its secrets; production refuses unsafe configurations."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, normalise_database_url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "STOREFRONT_ENV",
        "STOREFRONT_DATABASE_URL",
        "STOREFRONT_BASE_URL",
        "STOREFRONT_SECRET_KEY",
        "STOREFRONT_PRICING",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STOREFRONT_STRIPE_API_BASE",
        "PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STOREFRONT_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def test_development_makes_secrets_once_and_keeps_them(clean_env: Path) -> None:
    first = Settings.from_env()
    second = Settings.from_env()
    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert first.stripe_webhook_secrets == second.stripe_webhook_secrets
    assert first.stripe_webhook_secrets[0].startswith("whsec_")
    assert (clean_env / "secret_key").stat().st_mode & 0o077 == 0
    assert first.database_url == f"sqlite+aiosqlite:///{clean_env / 'storefront.db'}"
    assert first.uses_sandbox
    assert first.sandbox_mounted
    assert first.effective_stripe_api_base == "http://127.0.0.1:8000/sandbox"


def test_port_changes_default_base_url(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert Settings.from_env().base_url == "http://127.0.0.1:9123"


def test_production_refuses_without_secret_https_and_webhook_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOREFRONT_ENV", "production")
    monkeypatch.setenv("STOREFRONT_BASE_URL", "http://shop.example")
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    message = str(info.value)
    assert "STOREFRONT_SECRET_KEY" in message
    assert "https://" in message
    assert "STRIPE_WEBHOOK_SECRET" in message
    assert not (clean_env / "secret_key").exists()


def test_production_warns_loudly_on_a_test_key(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFRONT_ENV", "production")
    monkeypatch.setenv("STOREFRONT_BASE_URL", "https://shop.example")
    monkeypatch.setenv("STOREFRONT_SECRET_KEY", GOOD_PRODUCTION["STOREFRONT_SECRET_KEY"])
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_aaaaaaaaaaaaaaaaaaaa1,whsec_bbbbbbbbbbbbbbbbbbbb2")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_51HxYzAbCdEfGhIjKlMnOpQr")
    monkeypatch.setenv("STOREFRONT_SMTP_URL", GOOD_PRODUCTION["STOREFRONT_SMTP_URL"])
    with pytest.warns(RuntimeWarning, match="TEST key"):
        settings = Settings.from_env()
    assert settings.stripe_webhook_secrets == ("whsec_aaaaaaaaaaaaaaaaaaaa1", "whsec_bbbbbbbbbbbbbbbbbbbb2")
    assert settings.is_production


def test_unknown_environment_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFRONT_ENV", "staging")
    with pytest.raises(SettingsError, match="STOREFRONT_ENV"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_urls_get_async_drivers(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


GOOD_PRODUCTION = {
    "STOREFRONT_ENV": "production",
    "STOREFRONT_BASE_URL": "https://shop.example",
    "STOREFRONT_SECRET_KEY": "Zk3vQ9pL2mX7rT1wB8nC4yH6jD0fG5sA",
    "STRIPE_WEBHOOK_SECRET": "whsec_4f9a0c1d2e3b4a5968778695a4b3c2d1",
    "STRIPE_SECRET_KEY": "sk_live_51HxYzAbCdEfGhIjKlMnOpQr",
    "STOREFRONT_SMTP_URL": "smtps://shop:secret@smtp.example:465",
}


def _production(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    for name, value in {**GOOD_PRODUCTION, **overrides}.items():
        monkeypatch.setenv(name, value)


def test_a_good_production_configuration_starts(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = Settings.from_env()
    assert settings.is_production
    assert not settings.sandbox_mounted
    assert settings.effective_stripe_api_base == "https://api.stripe.com"


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("STRIPE_WEBHOOK_SECRET", ",", "STRIPE_WEBHOOK_SECRET"),
        ("STRIPE_WEBHOOK_SECRET", " , ,", "STRIPE_WEBHOOK_SECRET"),
        ("STRIPE_WEBHOOK_SECRET", "4f9a0c1d2e3b4a5968778695a4b3c2d1", "whsec_"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_4f9a0c1d2e3b4a5968778695a4b3c2d1,oops", "whsec_"),
        ("STRIPE_SECRET_KEY", "hunter2", "STRIPE_SECRET_KEY"),
        ("STRIPE_SECRET_KEY", "pk_live_51HxYzAbCdEfGhIjKlMnOpQr", "STRIPE_SECRET_KEY"),
        ("STRIPE_SECRET_KEY", "sk_live_", "STRIPE_SECRET_KEY"),
        ("STRIPE_SECRET_KEY", "sk_test_sandbox_51HxYzAbCdEfGhIjKl", "sandbox"),
        ("STOREFRONT_SECRET_KEY", "a" * 32, "STOREFRONT_SECRET_KEY"),
        ("STOREFRONT_SECRET_KEY", "abcd" * 10, "STOREFRONT_SECRET_KEY"),
        ("STOREFRONT_STRIPE_API_BASE", "http://127.0.0.1:12111", "STOREFRONT_STRIPE_API_BASE"),
        ("STOREFRONT_STRIPE_API_BASE", "https://sandbox.example/v1", "STOREFRONT_STRIPE_API_BASE"),
    ],
)
def test_production_refuses_an_unsafe_value(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, complaint: str
) -> None:
    _production(monkeypatch, **{name: value})
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_env()


def test_production_lists_every_problem_at_once(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _production(
        monkeypatch,
        STRIPE_WEBHOOK_SECRET=",",
        STRIPE_SECRET_KEY="hunter2",
        STOREFRONT_SECRET_KEY="b" * 40,
        STOREFRONT_STRIPE_API_BASE="http://127.0.0.1:9",
    )
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    message = str(info.value)
    for name in (
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_SECRET_KEY",
        "STOREFRONT_SECRET_KEY",
        "STOREFRONT_STRIPE_API_BASE",
    ):
        assert name in message


def test_production_never_mounts_the_sandbox_whatever_the_key() -> None:
    settings = Settings(env="production", stripe_secret_key="sk_test_sandbox_anything")
    assert settings.uses_sandbox
    assert not settings.sandbox_mounted


def test_checkout_caps_default_and_read_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = Settings.from_env()
    assert (default.checkout_max_open, default.checkout_max_per_hour) == (5, 30)
    monkeypatch.setenv("STOREFRONT_CHECKOUT_MAX_OPEN", "2")
    monkeypatch.setenv("STOREFRONT_CHECKOUT_MAX_PER_HOUR", "0")  # a cap of nothing would lock buyers out
    configured = Settings.from_env()
    assert (configured.checkout_max_open, configured.checkout_max_per_hour) == (2, 1)


def test_production_without_smtp_warns_that_no_buyer_gets_mail(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _production(monkeypatch)
    monkeypatch.delenv("STOREFRONT_SMTP_URL")
    with pytest.warns(RuntimeWarning, match="STOREFRONT_SMTP_URL"):
        assert Settings.from_env().is_production
