"""Operations for the writer-process tests: module-level, so they pickle and the child imports them."""

from __future__ import annotations

import os
import signal
from typing import Any

from sqlalchemy import text


def note(conn: Any, *, key: str) -> str:
    """Store ``key`` (a row of the key-value store) and answer it back."""
    conn.execute(_NOTE, {"key": key})
    return key


_NOTE = text(
    "INSERT INTO kv_store (id, key, namespace, value, expires_at)"
    " VALUES (lower(hex(randomblob(16))), :key, 'writer-test', x'00', '2999-01-01 00:00:00')"
)
_COUNT = text("SELECT count(*) FROM kv_store WHERE namespace = 'writer-test'")


def count(conn: Any) -> int:
    return int(conn.execute(_COUNT).scalar())


def fail(conn: Any, *, message: str) -> None:
    raise ValueError(message)


def pid(conn: Any) -> int:
    return os.getpid()


def die(conn: Any) -> None:
    """The child is killed in the middle of a batch."""
    os.kill(os.getpid(), signal.SIGKILL)


class OddError(Exception):
    """Does not survive unpickling: its constructor wants two arguments."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


def fail_oddly(conn: Any) -> None:
    raise OddError("not", "portable")
