"""``python -m app.i18n.check``: every message the shop can show has a Simplified Chinese translation.

Extracts msgids from all templates (Jinja's Babel extractor) and from ``app/**/*.py``
(``_()``, ``gettext``, ``ngettext``), then looks each one up in ``locales/zh/*.po``.
Prints what is missing and exits 1, so the test suite fails on an untranslated string.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from app.i18n import LOCALES_DIR
from app.settings import PROJECT_ROOT

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


@dataclass(frozen=True, slots=True)
class Message:
    msgid: str
    plural: str | None
    where: str


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def template_files(root: Path = PROJECT_ROOT) -> list[Path]:
    found = set((root / "templates").rglob("*.html")) | set((root / "app").rglob("*.html"))
    return sorted(found)


def python_files(root: Path = PROJECT_ROOT) -> list[Path]:
    return sorted(p for p in (root / "app").rglob("*.py") if "migrations" not in p.parts)


def extract(root: Path = PROJECT_ROOT) -> Iterator[Message]:
    """Every translatable message in the shop's templates and Python code."""
    sources = [(p, "jinja2.ext:babel_extract", JINJA_OPTIONS) for p in template_files(root)]
    sources += [(p, "python", {}) for p in python_files(root)]
    for path, method, options in sources:
        for lineno, message, _comments, _context in extract_from_file(
            method, str(path), keywords=KEYWORDS, options=options, strip_comment_tags=True
        ):
            where = f"{_relative(path)}:{lineno}"
            if isinstance(message, tuple):
                singular, plural = message[0], message[1]
                if singular:
                    yield Message(singular, plural or None, where)
            elif message:
                yield Message(message, None, where)


def translated(code: str = "zh", locales_dir: Path = LOCALES_DIR) -> dict[str, bool]:
    """msgid → whether it has a non-empty, non-fuzzy translation in any of the language's .po files."""
    done: dict[str, bool] = {}
    for po in sorted((locales_dir / code).glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=code)
        for entry in catalog:
            if not entry.id:
                continue
            key = str(entry.id if isinstance(entry.id, str) else entry.id[0])
            strings = (entry.string,) if isinstance(entry.string, str) else tuple(entry.string or ("",))
            ok = not entry.fuzzy and all(bool(s) for s in strings)
            done[key] = done.get(key, False) or ok
    return done


def missing(root: Path = PROJECT_ROOT, code: str = "zh") -> list[Message]:
    """Messages without a translation, first occurrence of each."""
    done = translated(code)
    seen: set[str] = set()
    out: list[Message] = []
    for message in extract(root):
        if message.msgid in seen or done.get(message.msgid):
            continue
        seen.add(message.msgid)
        out.append(message)
    return out


def main() -> int:
    gaps = missing()
    if not gaps:
        print("every message has a Simplified Chinese translation")
        return 0
    print(f"{len(gaps)} message(s) have no Simplified Chinese translation in app/i18n/locales/zh/*.po:")
    for message in gaps:
        print(f"  {message.where}: {message.msgid!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
