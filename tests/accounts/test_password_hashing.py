"""The password hasher the shop ships: argon2id at RFC 9106's second recommended cost.

The test processes hash at the lowest cost (see ``shipped_password_hasher`` in tests/conftest.py);
this checks what production uses.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type

from app.accounts import service
from tests.accounts.support import PASSWORD


def test_the_shipped_hasher_is_argon2id_at_full_cost(shipped_password_hasher: PasswordHasher) -> None:
    shipped = shipped_password_hasher
    assert shipped.type is Type.ID
    assert (shipped.time_cost, shipped.memory_cost, shipped.parallelism) == (3, 65536, 4)
    stored = shipped.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert shipped.verify(stored, PASSWORD)
    assert service._hasher is not shipped, "the test processes should hash at the lowest cost"
