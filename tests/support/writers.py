"""A money writer that records the operations it is given, for tests of who writes through it."""

from __future__ import annotations

import pickle
from functools import partial
from typing import Any

from app.db.group_commit import Operation, SqliteWriter, Writer
from app.db.writer import on_connection


class RecordingWriter:
    """Delegates to a real writer; keeps the name of each background operation (``on_connection``).

    Each operation and its outcome go through pickle as they would to and from the app's writer
    process: one that does not pickle would there run on a second, in-process writer
    (``ProcessWriter.call``), which the thread writer of the tests would never show.
    """

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.background: list[str] = []

    async def call(self, operation: Operation[Any]) -> Any:
        if isinstance(operation, partial) and operation.func is on_connection:
            self.background.append(operation.args[0].__name__)
        outcome = await self.inner.call(pickle.loads(pickle.dumps(operation)))
        return pickle.loads(pickle.dumps(outcome))

    async def close(self) -> None:
        await self.inner.close()


def recording_writer(database_url: str) -> RecordingWriter:
    return RecordingWriter(SqliteWriter(database_url))
