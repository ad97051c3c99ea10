"""A faithful, stateful stand-in for the parts of Stripe's API and hosted Checkout the shop uses.

Imports nothing from the rest of `app`: the shop reaches it only over HTTP through the `stripe` SDK.
"""

from .app import create_sandbox_app, get_runtime
from .config import ChaosConfig, SandboxConfig
from .runtime import SandboxRuntime
from .state import SandboxState

__all__ = [
    "ChaosConfig",
    "SandboxConfig",
    "SandboxRuntime",
    "SandboxState",
    "create_sandbox_app",
    "get_runtime",
]
