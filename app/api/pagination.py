"""Cursor pagination for the API's lists: ``?limit=`` (1-100) and ``?cursor=`` from the last page.

A cursor is opaque to hosts: the position after which the next page starts (a row id, or a
tuple such as ``(created_at, id)``), as JSON in URL-safe base64. A cursor that does not decode
is a 422 ``invalid_cursor``; one that decodes to some other position merely starts there (it
never widens what the key may see: the query still filters by customer).

Usage in a list route (the dependency ``page`` is provided on the API router)::

    @get("/customers/{external_id:str}/lots", opt={"scope": "read"}, responses=problem_responses(404))
    async def lots(external_id: str, page: PageParams, db_session: AsyncSession) -> Page[LotOut]:
        after = page.after_int()                        # None on the first page
        rows = await run(db_session, list_lots, user_id, after_id=after, limit=page.fetch)
        return page_of([LotOut(...) for row in rows], page, position=lambda lot: lot.id)

Fetch ``page.fetch`` (= ``limit + 1``) rows: the extra one only tells whether there is a next page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

from app.api.problems import Problem

__all__ = (
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Page",
    "PageParams",
    "decode_cursor",
    "encode_cursor",
    "page_of",
    "provide_page",
)

T = TypeVar("T")
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 100
CURSOR_MAX: Final = 512


class Page(msgspec.Struct, Generic[T]):
    """One page of a list: ``next_cursor`` is null on the last page."""

    data: list[T]
    next_cursor: str | None = None


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The position a cursor holds; 422 ``invalid_cursor`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise Problem(
            422, "invalid_cursor", "This cursor was not given by this API.", param="cursor"
        ) from exc


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    after: Any
    """The decoded position, or ``None`` for the first page."""

    @property
    def fetch(self) -> int:
        return self.limit + 1

    def after_int(self) -> int | None:
        """The position as a row id (the common case); 422 when the cursor holds something else."""
        if self.after is None:
            return None
        if isinstance(self.after, int) and not isinstance(self.after, bool) and 0 <= self.after < 2**63:
            return self.after
        raise Problem(422, "invalid_cursor", "This cursor was not given by this API.", param="cursor")


def provide_page(
    limit: Annotated[
        int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="Items per page.")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        QueryParameter(name="cursor", max_length=CURSOR_MAX, description="next_cursor of the previous page."),
    ] = None,
) -> PageParams:
    """Dependency ``page``: the limit and the decoded cursor."""
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def page_of(items: Sequence[T], page: PageParams, position: Callable[[T], Any]) -> Page[T]:
    """The first ``page.limit`` items; a cursor at the last of them when more were fetched."""
    shown = list(items[: page.limit])
    more = len(items) > page.limit and shown
    return Page(data=shown, next_cursor=encode_cursor(position(shown[-1])) if more else None)
