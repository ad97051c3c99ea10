"""Numbered pages for the console's lists: an admin jumps to page 40 of a filter (keyset would not)."""

from __future__ import annotations

from collections.abc import Sequence
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
    query: AnySelect,
    number: int,
    *,
    size: int = PAGE_SIZE,
    scalars: bool = True,
    count: AnySelect | None = None,
) -> Page[Any]:
    """One page of ``query`` (already ordered) and the total count of its rows (``count``, when
    given, counts them more cheaply, e.g. without a join the page needs)."""
    if count is None:
        count = select(func.count()).select_from(query.order_by(None).subquery())
    total = int(await db.scalar(count) or 0)
    paged = query.limit(size).offset((number - 1) * size)
    items: Sequence[Any] = list(await db.scalars(paged)) if scalars else list((await db.execute(paged)).all())
    return Page(items=items, number=number, size=size, total=total)
