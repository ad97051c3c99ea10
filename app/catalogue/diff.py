"""What differs, pack by pack, between two catalogues (the live one and the file on disk).

Only what changes what a buyer is offered or credited is compared: whether the pack exists,
its price (amount and currency), units, bonus and whether it is active. Names and texts are
edited freely and not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .loader import CatalogueError, file_version, parse_catalogue
from .model import Catalogue, Pack

__all__ = ("Change", "DiskComparison", "FieldChange", "PackChange", "compare_with_file", "diff_catalogues")


class Change(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    """``price``, ``units``, ``bonus`` or ``active``."""
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class PackChange:
    pack_id: str
    change: Change
    fields: tuple[FieldChange, ...] = ()
    pack: Pack | None = None
    """The pack as it is in the new catalogue (the old one for a removed pack)."""


def _price(pack: Pack) -> str:
    return f"{pack.price} {pack.currency}"


def _compared(pack: Pack) -> dict[str, str]:
    return {
        "price": _price(pack),
        "units": str(pack.units),
        "bonus": str(pack.bonus),
        "active": "yes" if pack.active else "no",
    }


def diff_catalogues(live: Catalogue, disk: Catalogue) -> list[PackChange]:
    """Per pack, what ``disk`` changes of ``live``: live's packs in order, then the added ones."""
    changes: list[PackChange] = []
    for old in live.packs:
        new = disk.get(old.id)
        if new is None:
            changes.append(PackChange(old.id, Change.REMOVED, pack=old))
            continue
        before, after = _compared(old), _compared(new)
        fields = tuple(
            FieldChange(name, before[name], after[name]) for name in before if before[name] != after[name]
        )
        if fields:
            changes.append(PackChange(old.id, Change.CHANGED, fields, pack=new))
    added = (new for new in disk.packs if live.get(new.id) is None)
    changes.extend(PackChange(new.id, Change.ADDED, pack=new) for new in added)
    return changes


@dataclass(frozen=True, slots=True)
class DiskComparison:
    """The file on disk against the live catalogue: its problems when broken, else the changes."""

    version: str | None
    """The file's version (None when it cannot be read)."""
    problems: tuple[str, ...] = ()
    changes: tuple[PackChange, ...] = ()

    @property
    def same(self) -> bool:
        return not self.problems and not self.changes


def compare_with_file(live: Catalogue, path: Path) -> DiskComparison:
    """Read ``path`` (a small file: callers on an event loop run this in a thread) and diff it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return DiskComparison(None, (f"file: cannot read {path}: {exc.strerror or exc}",))
    version = file_version(data)
    if version == live.version:
        return DiskComparison(version)
    try:
        disk = parse_catalogue(data, source=str(path))
    except CatalogueError as exc:
        return DiskComparison(version, exc.problems)
    return DiskComparison(version, changes=tuple(diff_catalogues(live, disk)))
