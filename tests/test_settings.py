"""Settings: development makes and keeps its secrets; production refuses unsafe configurations."""

from __future__ import annotations

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
    monkeypatch.setenv("STOREFRONT_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_a,whsec_b")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_123")
    with pytest.warns(RuntimeWarning, match="TEST key"):
        settings = Settings.from_env()
    assert settings.stripe_webhook_secrets == ("whsec_a", "whsec_b")
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


def test_checkout_caps_default_and_read_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = Settings.from_env()
    assert (default.checkout_max_open, default.checkout_max_per_hour) == (5, 30)
    monkeypatch.setenv("STOREFRONT_CHECKOUT_MAX_OPEN", "2")
    monkeypatch.setenv("STOREFRONT_CHECKOUT_MAX_PER_HOUR", "0")  # a cap of nothing would lock buyers out
    configured = Settings.from_env()
    assert (configured.checkout_max_open, configured.checkout_max_per_hour) == (2, 1)
