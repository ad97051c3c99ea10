"""CSV cells a spreadsheet opens safely: the console's orders export and the ledger export share them.

Text that starts like a formula (``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is
prefixed with ``'`` so Excel or LibreOffice shows it instead of running it (OWASP "CSV
injection"): buyers' emails, host applications' ledger reasons and admins' reasons all end up
in these files. Numbers are never text here, so a negative amount stays a number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

__all__ = ("FORMULA_START", "cell")

FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """One CSV cell: empty for None, ISO 8601 for a moment, text defused, anything else as ``str``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_START) else value
    return str(value)
