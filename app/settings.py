"""One typed place for configuration, read from the environment.

Development makes its own secrets and keeps them under ``var/`` so that restarts keep
sessions and webhook signatures valid; production refuses to start without real ones.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Environment = Literal["development", "production"]
POLICIES = PROJECT_ROOT / "static" / "policies"
"""The shipped terms, privacy and refund policies (under static/ so every deployment carries them)."""


class SettingsError(RuntimeError):
    """The configuration cannot be used; the message says what to set."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


STRIPE_API = "https://api.stripe.com"
STRIPE_KEY_SHAPE = re.compile(r"(sk|rk)_(live|test)_[A-Za-z0-9]{16,}")
"""A secret or restricted key; publishable keys (``pk_``) and made-up strings are refused."""
WEBHOOK_SECRET_SHAPE = re.compile(r"whsec_[A-Za-z0-9+/=_-]{16,}")


def _guessable(secret: str) -> bool:
    """True for a key with fewer than 128 bits even if every character were random.

    ``len × log2(distinct characters)`` is an upper bound on its entropy: 32 copies of one
    letter have none, ``abcd`` repeated has 2 bits a character.
    """
    distinct = len(set(secret))
    return distinct < 8 or len(secret) * math.log2(distinct) < 128


def production_problems(
    *, secret_key: str, base_url: str, webhook: str, stripe_key: str, api_base: str
) -> list[str]:
    """Everything that would let production give credit away or fail silently, all at once."""
    problems = []
    if len(secret_key) < 32 or _guessable(secret_key):
        problems.append(
            "STOREFRONT_SECRET_KEY must be at least 32 random characters (e.g. python -c "
            "'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if not base_url.startswith("https://"):
        problems.append("STOREFRONT_BASE_URL must be an https:// URL")
    webhook_secrets = [part.strip() for part in webhook.split(",") if part.strip()]
    if not webhook_secrets:
        problems.append(
            "STRIPE_WEBHOOK_SECRET must be set (whsec_..., several comma-separated while rotating)"
        )
    elif not all(WEBHOOK_SECRET_SHAPE.fullmatch(part) for part in webhook_secrets):
        problems.append("STRIPE_WEBHOOK_SECRET: every secret must be a whsec_... signing secret from Stripe")
    if not stripe_key:
        problems.append("STRIPE_SECRET_KEY must be set")
    elif stripe_key.startswith(("sk_test_sandbox", "rk_test_sandbox")):
        problems.append("STRIPE_SECRET_KEY is a sandbox key: production never uses the Stripe sandbox")
    elif not STRIPE_KEY_SHAPE.fullmatch(stripe_key):
        # A test key (sk_test_/rk_test_) passes with a loud warning: that is a staging shop, where
        # test cards credit test coins by design (livemode is checked against the key's mode).
        problems.append(
            "STRIPE_SECRET_KEY must be a Stripe secret or restricted key (sk_live_..., rk_live_...)"
        )
    if api_base and api_base.rstrip("/") != STRIPE_API:
        problems.append(
            f"STOREFRONT_STRIPE_API_BASE must be empty or {STRIPE_API} in production "
            "(anything else may be a Stripe sandbox, which would credit unpaid orders)"
        )
    return problems


def _keep_secret(var_dir: Path, name: str, make: str) -> str:
    """Read a development secret from ``var/``, making it once when missing."""
    path = var_dir / name
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    var_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(make + "\n", encoding="utf-8")
    path.chmod(0o600)
    return make


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the app reads from its environment, validated once."""

    env: Environment = "development"
    database_url: str = ""
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    pricing_path: Path = PROJECT_ROOT / "pricing.toml"
    var_dir: Path = PROJECT_ROOT / "var"
    stripe_secret_key: str = ""
    stripe_webhook_secrets: tuple[str, ...] = ()
    stripe_api_base: str = ""
    """Where the Stripe SDK sends API calls; empty means Stripe itself (or the mounted sandbox)."""
    sandbox_key: str = ""
    redis_url: str = ""
    checkout_expiry_seconds: int = 3600
    checkout_max_open: int = 5
    """Unpaid orders one buyer may have at once (an open session for the same pack is reused)."""
    checkout_max_per_hour: int = 30
    """Orders one buyer may start in any hour, whatever became of them."""
    reconcile_interval_seconds: int = 60
    expiry_interval_seconds: int = 5
    """How often expired credit lots and holds are swept (0: only when a write meets them)."""
    log_level: str = "INFO"
    debug: bool = False
    metrics_token: str = ""
    """Bearer token for ``/metrics`` and ``/healthz/detail``; production without one hides both."""
    trusted_proxies: tuple[str, ...] = ()
    """Proxies (IPs or CIDRs) whose ``X-Forwarded-For`` is believed; nobody's by default."""
    api_rate_per_minute: int = 6000
    """Host API calls one server key may make a minute, counted across every replica."""
    api_key_cache_seconds: float = 5.0
    """How long a process trusts a server key it looked up: a revoked key stops working within it."""
    money_writer: str = "process"
    """SQLite only: ``process`` runs the money writer in a child process (app/db/writer_process.py),
    ``thread`` in a thread of the server's process (what the tests use)."""
    sign_in_link_seconds: int = 300
    """How long a host's sign-in link stays usable (once)."""
    host_webhooks_deliver: bool = True
    """Run the host webhook deliverer inside the app (every replica may: claims are atomic)."""
    host_webhooks_poll_seconds: float = 1.0
    host_webhooks_timeout_seconds: float = 10.0
    host_webhooks_keep_days: int = 30
    """Days a settled host event is kept with its deliveries and their log, then purged."""
    shop_name: str = "Storefront"
    """Shown in the header, page titles and the footer."""
    support_email: str = ""
    """Where buyers write for help; shown in the footer and the policies (hidden when empty)."""
    logo: str = "brand/logo.svg"
    """The header's logo, a file under ``static/``."""
    favicon: str = "brand/favicon.svg"
    """The tab icon, a file under ``static/``."""
    terms_path: Path = POLICIES / "terms.md"
    privacy_path: Path = POLICIES / "privacy.md"
    refund_policy_path: Path = POLICIES / "refunds.md"
    """Markdown policies; a Chinese page reads ``<name>.zh.md`` beside the file when there is one."""
    smtp_url: str = ""
    """``smtp://user:pass@host:587`` (STARTTLS when offered) or ``smtps://...:465``; empty: files under
    ``var/mail/`` (development's mail, listed at ``/dev/mail``)."""
    mail_from: str = "Storefront <shop@localhost>"
    mail_deliver: bool = True
    """Run the mail worker inside the app (every replica may: claims are atomic)."""
    mail_poll_seconds: float = 1.0
    verify_email: bool = False
    """Buying needs a verified email (a link sent at sign-up); host customers are vouched for by the host."""
    automatic_tax: bool = False
    """``STOREFRONT_AUTOMATIC_TAX``: Checkout asks Stripe Tax to price tax by the buyer's address."""
    password_reset_seconds: int = 3600
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_sandbox(self) -> bool:
        """True when no real Stripe key is set: the shop mounts its own Stripe sandbox."""
        return not self.stripe_secret_key or self.stripe_secret_key.startswith("sk_test_sandbox")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sandbox_mounted(self) -> bool:
        """The sandbox runs inside this app when we use it and nobody pointed us at another one.

        Never in production, whatever the key: anyone could pay through its controls.
        """
        return not self.is_production and self.uses_sandbox and not self.stripe_api_base

    @property
    def effective_stripe_api_base(self) -> str:
        if self.stripe_api_base:
            return self.stripe_api_base.rstrip("/")
        if self.uses_sandbox:
            return self.base_url.rstrip("/") + "/sandbox"
        return STRIPE_API

    @property
    def effective_stripe_key(self) -> str:
        return self.stripe_secret_key or "sk_test_sandbox"

    @property
    def stripe_livemode(self) -> bool:
        """The mode of our Stripe key: events of the other mode are never applied (app.money.events)."""
        return self.effective_stripe_key.startswith(("sk_live_", "rk_live_"))

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from ``STOREFRONT_*`` and ``STRIPE_*`` variables."""
        env_name = _env("STOREFRONT_ENV", "development").lower()
        if env_name not in ("development", "production"):
            raise SettingsError(f"STOREFRONT_ENV must be 'development' or 'production', not {env_name!r}")
        env: Environment = "production" if env_name == "production" else "development"
        money_writer = _env("STOREFRONT_MONEY_WRITER", "process").lower()
        if money_writer not in ("process", "thread"):
            raise SettingsError(
                f"STOREFRONT_MONEY_WRITER must be 'process' or 'thread', not {money_writer!r}"
            )
        var_dir = Path(_env("STOREFRONT_VAR_DIR") or PROJECT_ROOT / "var")
        port = _env("PORT", "8000")
        base_url = _env("STOREFRONT_BASE_URL") or f"http://127.0.0.1:{port}"
        database_url = _env("STOREFRONT_DATABASE_URL") or f"sqlite+aiosqlite:///{var_dir / 'storefront.db'}"
        database_url = normalise_database_url(database_url)
        secret_key = _env("STOREFRONT_SECRET_KEY")
        webhook = _env("STRIPE_WEBHOOK_SECRET")
        stripe_key = _env("STRIPE_SECRET_KEY")
        api_base = _env("STOREFRONT_STRIPE_API_BASE")
        if env == "production":
            problems = production_problems(
                secret_key=secret_key,
                base_url=base_url,
                webhook=webhook,
                stripe_key=stripe_key,
                api_base=api_base,
            )
            if problems:
                raise SettingsError("refusing to start in production: " + "; ".join(problems))
            if stripe_key.startswith("sk_test_"):
                warnings.warn(
                    "STRIPE_SECRET_KEY is a TEST key (sk_test_...) in production: no real money will move",
                    RuntimeWarning,
                    stacklevel=2,
                )
            if not _env("STOREFRONT_SMTP_URL"):
                warnings.warn(
                    "STOREFRONT_SMTP_URL is not set in production: receipts and password-reset links"
                    " are only written under the var dir, and no buyer receives them",
                    RuntimeWarning,
                    stacklevel=2,
                )
        else:
            if not secret_key:
                secret_key = _keep_secret(var_dir, "secret_key", secrets.token_urlsafe(48))
            if not webhook:
                webhook = _keep_secret(var_dir, "webhook_secret", "whsec_" + secrets.token_hex(24))
        return cls(
            env=env,
            database_url=database_url,
            base_url=base_url.rstrip("/"),
            secret_key=secret_key,
            pricing_path=Path(_env("STOREFRONT_PRICING") or PROJECT_ROOT / "pricing.toml"),
            var_dir=var_dir,
            stripe_secret_key=stripe_key,
            stripe_webhook_secrets=tuple(s.strip() for s in webhook.split(",") if s.strip()),
            stripe_api_base=api_base,
            sandbox_key=_env("STOREFRONT_SANDBOX_KEY"),
            redis_url=_env("STOREFRONT_REDIS_URL"),
            checkout_expiry_seconds=int(_env("STOREFRONT_CHECKOUT_EXPIRY", "3600")),
            checkout_max_open=max(1, int(_env("STOREFRONT_CHECKOUT_MAX_OPEN", "5"))),
            checkout_max_per_hour=max(1, int(_env("STOREFRONT_CHECKOUT_MAX_PER_HOUR", "30"))),
            reconcile_interval_seconds=int(_env("STOREFRONT_RECONCILE_INTERVAL", "60")),
            expiry_interval_seconds=int(_env("STOREFRONT_EXPIRY_INTERVAL", "5")),
            log_level=_env("STOREFRONT_LOG_LEVEL", "INFO").upper(),
            debug=env == "development" and _env("STOREFRONT_DEBUG") in ("1", "true"),
            metrics_token=_env("STOREFRONT_METRICS_TOKEN"),
            trusted_proxies=trusted_proxies(_env("STOREFRONT_TRUSTED_PROXIES")),
            api_rate_per_minute=max(1, int(_env("STOREFRONT_API_RATE_PER_MINUTE", "6000"))),
            api_key_cache_seconds=max(0.0, float(_env("STOREFRONT_API_KEY_CACHE_SECONDS", "5"))),
            money_writer=money_writer,
            sign_in_link_seconds=max(30, int(_env("STOREFRONT_SIGN_IN_LINK_SECONDS", "300"))),
            host_webhooks_deliver=_env("STOREFRONT_HOST_WEBHOOKS_DELIVER", "1").lower()
            not in ("0", "false", "no", "off"),
            host_webhooks_poll_seconds=max(0.05, float(_env("STOREFRONT_HOST_WEBHOOKS_POLL", "1"))),
            host_webhooks_timeout_seconds=max(1.0, float(_env("STOREFRONT_HOST_WEBHOOKS_TIMEOUT", "10"))),
            host_webhooks_keep_days=max(1, int(_env("STOREFRONT_HOST_WEBHOOKS_KEEP_DAYS", "30"))),
            shop_name=_env("STOREFRONT_SHOP_NAME") or "Storefront",
            support_email=_env("STOREFRONT_SUPPORT_EMAIL"),
            logo=_env("STOREFRONT_LOGO") or "brand/logo.svg",
            favicon=_env("STOREFRONT_FAVICON") or "brand/favicon.svg",
            terms_path=Path(_env("STOREFRONT_TERMS") or POLICIES / "terms.md"),
            privacy_path=Path(_env("STOREFRONT_PRIVACY") or POLICIES / "privacy.md"),
            refund_policy_path=Path(_env("STOREFRONT_REFUND_POLICY") or POLICIES / "refunds.md"),
            smtp_url=_env("STOREFRONT_SMTP_URL"),
            mail_from=_env("STOREFRONT_MAIL_FROM") or "Storefront <shop@localhost>",
            mail_deliver=_flag("STOREFRONT_MAIL_DELIVER", "1"),
            mail_poll_seconds=max(0.05, float(_env("STOREFRONT_MAIL_POLL", "1"))),
            verify_email=_flag("STOREFRONT_VERIFY_EMAIL", "0"),
            automatic_tax=_flag("STOREFRONT_AUTOMATIC_TAX", "0"),
            password_reset_seconds=max(300, int(_env("STOREFRONT_PASSWORD_RESET_SECONDS", "3600"))),
        )


def _flag(name: str, default: str) -> bool:
    return _env(name, default).lower() not in ("", "0", "false", "no", "off")


def trusted_proxies(raw: str) -> tuple[str, ...]:
    """``STOREFRONT_TRUSTED_PROXIES``: comma- or space-separated IPs/CIDRs, each checked at start-up."""
    found = []
    for item in raw.replace(",", " ").split():
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise SettingsError(f"STOREFRONT_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR") from exc
    return tuple(found)


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return Settings.from_env()
