"""Reading what a click command said."""

from __future__ import annotations

import re

from click.testing import Result


def said(result: Result) -> str:
    """The command's words, without rich-click's error box and its line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
