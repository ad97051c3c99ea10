"""Numbered pages for the console's lists: an admin jumps to page 40 of a filter (keyset would not)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Generic, TypeAlias, TypeVar

from litestar.params import Parameter
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("PAGE_SIZE", "AnySelect", "Page", "PageNumber", "paginate")

PAGE_SIZE: Final = 50
MAX_PAGE: Final = 1_000_000

PageNumber = Annotated[int, Parameter(ge=1, le=MAX_PAGE)]
"""``?page=`` from 1; out of range is a 400 before the handler runs."""

T = TypeVar("T")

AnySelect: TypeAlias = Select[*tuple[Any, ...]]
"""A SELECT of any columns (SQLAlchemy 2.1 types a select by each of its columns)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


async def paginate(
    db: AsyncSession,
    query: AnySelect | Callable[[int, int], AnySelect],
    number: int,
    *,
    size: int = PAGE_SIZE,
    scalars: bool = True,
    count: AnySelect | None = None,
) -> Page[Any]:
    """One page of ``query`` (already ordered) and the total count of its rows.

    ``query`` may instead be a function of (limit, offset) that builds the page itself (e.g.
    picking ids first); then ``count`` must be given. ``count`` may also count more cheaply than
    the query would (e.g. without a join the page needs).
    """
    if count is None:
        if callable(query):
            raise TypeError("a page built by a function needs its count query")
        count = select(func.count()).select_from(query.order_by(None).subquery())
    total = int(await db.scalar(count) or 0)
    offset = (number - 1) * size
    paged = query(size, offset) if callable(query) else query.limit(size).offset(offset)
    items: Sequence[Any] = list(await db.scalars(paged)) if scalars else list((await db.execute(paged)).all())
    return Page(items=items, number=number, size=size, total=total)
