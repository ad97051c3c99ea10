"""Run prebuilt SQLAlchemy Core statements on a connection's driver connection, each compiled once.

Why this exists: the webhook writers (``app.db.writer``) run the money core
(``app.money``) thousands of times a second. On SQLAlchemy's ``Connection`` each ``execute`` spends most of
its time around SQLite's own few microseconds (cache-key generation for the compiled cache,
execution context, result metadata): measured in-process on the bench's events, the public
``Connection`` did 1,700 completions/s against 3,900/s for a compile-once executor, and
``bench/webhook_bench.py`` end to end was 33% slower (630 vs 945 events/s, same load) — over
the 20% we accept for hand-written plumbing. So the writers use this instead.

Only public SQLAlchemy interfaces are used: ``ClauseElement.compile(dialect=...)`` (the SQL
string is exactly SQLAlchemy's), the compiled object's ``positiontup``, ``binds`` and
``params``, ``TypeEngine.dialect_impl(...).bind_processor`` / ``result_processor`` (so values
convert exactly as SQLAlchemy converts them), ``exported_columns`` for result types, and
``Connection.connection`` for the driver connection of a SQLAlchemy ``Connection`` whose
transaction SQLAlchemy still runs (on asyncpg inside ``run_sync``, the driver's prepared
statements are reused). It is what the money code needs of a connection and no more
(``app.db.sql.SqlConnection``): ``execute(statement, params)`` with ``first``/``one``/
``all``/``scalar`` and iteration on the rows, and ``dialect``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import Dialect

__all__ = ("CompiledConnection", "Rows")

Processor = Callable[[Any], Any]


@dataclass(slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    binds: dict[str, Processor]
    results: tuple[Processor | None, ...] | None


class Rows:
    """The rows of one statement, with the ``Result`` methods the money code calls."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

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


_PLANS: dict[tuple[str, str], dict[int, tuple[Any, _Plan]]] = {}
"""Compiled plans per (dialect, driver), shared by every connection: statements are built once."""


class CompiledConnection:
    """Executes on ``connection``'s driver connection, inside the transaction SQLAlchemy runs there.

    Transactions stay SQLAlchemy's (``connection.begin()``, ``begin_nested()``); only the
    statements skip its per-execution work.
    """

    def __init__(self, connection: Connection) -> None:
        self.sqlalchemy_connection = connection
        """The SQLAlchemy ``Connection`` underneath, for statements built per call (see
        :func:`app.db.writer.on_connection`): plans here are kept per statement object forever."""
        self.dialect: Dialect = connection.dialect
        self._driver = connection.connection
        self._plans = _PLANS.setdefault((self.dialect.name, self.dialect.driver), {})

    def _plan(self, statement: Any) -> _Plan:
        hit = self._plans.get(id(statement))
        if hit is not None and hit[0] is statement:
            return hit[1]
        compiled = statement.compile(dialect=self.dialect)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("expanding IN is not supported here: use a list of literal()/bindparam()")
        if compiled.insert_prefetch or compiled.update_prefetch:
            # SQLAlchemy's Connection would compute these (column defaults, onupdate) per execution.
            missing = [column.name for column in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            raise ValueError(f"bind {', '.join(missing)} explicitly: defaults are not computed here")
        names = tuple(compiled.positiontup or ())
        if not names and compiled.binds:
            raise ValueError(f"{self.dialect.name} does not bind by position; this runs positional drivers")
        binds = {}
        for name in names:
            processor = compiled.binds[name].type.dialect_impl(self.dialect).bind_processor(self.dialect)
            if processor is not None:
                binds[name] = processor
        columns = getattr(statement, "exported_columns", None)
        results = None
        if columns is not None:
            processors = tuple(
                column.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
                for column in columns
            )
            results = processors if any(processors) else None
        plan = _Plan(compiled.string, names, dict(compiled.params), binds, results)
        self._plans[id(statement)] = (statement, plan)  # keeps the statement alive: ids stay unique
        return plan

    def begin_nested(self) -> Any:
        """A SAVEPOINT of SQLAlchemy's transaction on the same connection (a context manager)."""
        return self.sqlalchemy_connection.begin_nested()

    def execute(self, statement: Any, parameters: Mapping[str, Any] | None = None, /) -> Rows:
        plan = self._plan(statement)
        given = parameters or {}
        values: list[Any] = []
        for name in plan.names:
            value = given[name] if name in given else plan.defaults.get(name)
            processor = plan.binds.get(name)
            values.append(processor(value) if processor is not None and value is not None else value)
        cursor = self._driver.cursor()
        try:
            cursor.execute(plan.sql, values)
            rows: list[tuple[Any, ...]] = list(cursor.fetchall()) if cursor.description is not None else []
        finally:
            cursor.close()
        if rows and plan.results is not None:
            processors = plan.results
            rows = [
                tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=True))
                for row in rows
            ]
        return Rows(rows)
