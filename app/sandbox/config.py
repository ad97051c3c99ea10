"""Configuration of the Stripe sandbox (kept separate so the CLI and tests can build it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ChaosConfig:
    """Seeded misbehaviour of webhook delivery, to prove handlers cope with what Stripe allows.

    Probabilities are per (event, endpoint) delivery; the same seed and the same sequence of
    events give the same decisions.
    """

    seed: int = 0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    drop: float = 0.0
    max_delay: float = 0.5


@dataclass
class SandboxConfig:
    """Everything the sandbox needs; the caller reads env vars (e.g. STOREFRONT_SANDBOX_KEY)."""

    api_key: str | None = None
    webhook_endpoints: list[tuple[str, str]] = field(default_factory=list)
    public_url: str = "http://127.0.0.1:8000/sandbox"
    business_name: str = "Storefront"
    """Who the hosted page says the buyer pays (Stripe shows the account's name); the shop mounts
    its sandbox with ``STOREFRONT_SHOP_NAME``."""
    state_file: Path | None = None
    retry_time_scale: float = 1.0
    retry_base_delay: float = 5.0
    max_delivery_attempts: int = 8
    delivery_timeout: float = 10.0
    delivery_concurrency: int = 4
    # Sandbox-clock seconds after which a bank debit settles (Stripe test mode takes minutes).
    async_payment_delay: float = 10.0
    # How often (wall seconds) the background ticker expires sessions and settles debits.
    tick_interval: float = 1.0
    chaos: ChaosConfig | None = None
    # Save at most this often (wall seconds) when state_file is set.
    save_debounce: float = 0.2
