"""The hosted pages' stylesheet, inlined, and the CSP source that allows exactly it.

The pages are relative-linked so they work at any mount prefix, which makes a ``<link>`` to a
stylesheet awkward; inlining it keeps one request per page. A Content-Security-Policy without
``'unsafe-inline'`` allows an inline ``<style>`` only by its hash, so the text is read once here
and both the template and the host's CSP use this same string.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Final

__all__ = ["STYLESHEET", "STYLE_CSP_SOURCE"]

STYLESHEET: Final = (Path(__file__).parent / "templates" / "sandbox.css").read_text(encoding="utf-8")
STYLE_CSP_SOURCE: Final = (
    "'sha256-" + base64.b64encode(hashlib.sha256(STYLESHEET.encode()).digest()).decode() + "'"
)
"""``style-src`` source matching the inline ``<style>`` of every hosted page."""
