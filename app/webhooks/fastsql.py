"""A minimal stand-in for SQLAlchemy's ``Connection`` over a raw ``sqlite3`` connection.

The SQLite webhook writer runs the same money code as everyone else (statements built once
with SQLAlchemy), but SQLAlchemy spends ~30 µs per statement around SQLite's ~5 µs. This
adapter compiles each statement ONCE with SQLAlchemy's own SQLite dialect (so the SQL, bind
and result conversions are exactly SQLAlchemy's) and then executes it straight on the
driver. It supports what the money path uses: ``execute(stmt, params)`` returning rows with
``first()/one()/all()/scalar()``, and ``dialect.name``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

__all__ = ("FastResult", "FastSqlite")


@dataclass(slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    binds: dict[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]


class FastResult:
    """The rows of one statement, with the few ``Result`` methods the money code calls."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> tuple[Any, ...]:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


class FastSqlite:
    """Executes SQLAlchemy Core statements on a ``sqlite3`` connection, compiled once each."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.raw = connection
        self.dialect = SQLiteDialect_pysqlite(paramstyle="qmark")
        self._cache: dict[int, tuple[Any, _Compiled]] = {}

    def _compile(self, statement: Any) -> _Compiled:
        hit = self._cache.get(id(statement))
        if hit is not None and hit[0] is statement:
            return hit[1]
        compiled = statement.compile(dialect=self.dialect)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("expanding IN is not supported here: use a list of literal()/bindparam()")
        binds = {
            name: processor
            for name, processor in (compiled._bind_processors or {}).items()
            if processor is not None
        }
        results = tuple(
            column[3]._cached_result_processor(self.dialect, None)
            for column in getattr(compiled, "_result_columns", ())
        )
        entry = _Compiled(
            compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params), binds, results
        )
        self._cache[id(statement)] = (statement, entry)  # keeps the statement alive: ids stay unique
        return entry

    def execute(self, statement: Any, parameters: Mapping[str, Any] | None = None, /) -> FastResult:
        entry = self._compile(statement)
        given = parameters or {}
        values: list[Any] = []
        for name in entry.names:
            value = given[name] if name in given else entry.defaults.get(name)
            processor = entry.binds.get(name)
            values.append(processor(value) if processor is not None and value is not None else value)
        rows = self.raw.execute(entry.sql, values).fetchall()
        if rows and any(entry.results):
            processors: Sequence[Callable[[Any], Any] | None] = entry.results
            rows = [
                tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=False))
                for row in rows
            ]
        return FastResult(rows)

    def exec(self, sql: str) -> None:
        """A statement with no parameters (BEGIN, SAVEPOINT, COMMIT...)."""
        self.raw.execute(sql)
