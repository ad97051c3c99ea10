"""The money-path fixtures (a sandbox and a shop on real ports) for purchases made end to end."""

from tests.checkout.conftest import shop  # noqa: F401  (a fixture, found by name)
