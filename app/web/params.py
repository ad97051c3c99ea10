"""Parameter types shared by the routes."""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import Parameter

__all__ = ["INT64_MAX", "OptionalRowId", "RowId"]

INT64_MAX: Final = 2**63 - 1
_BOUNDS: Final = Parameter(ge=-INT64_MAX - 1, le=INT64_MAX)

RowId = Annotated[int, _BOUNDS]
"""An integer the database can compare with its 64-bit ids.

Python's ints have no bound, but SQLite and asyncpg raise on one beyond 64 bits (a 500);
with this bound Litestar answers such a path or query 400 before the handler runs.
"""

OptionalRowId = Annotated[int | None, _BOUNDS]
"""``RowId`` or absent; ``RowId | None`` would drop the bounds (Litestar reads them off the outer type)."""
