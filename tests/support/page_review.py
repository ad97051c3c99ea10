"""Review a page the way a buyer meets it: axe-core, no sideways scroll, a screenshot for people.

``review(page, name)`` runs axe-core (bundled by ``axe-playwright-python``, nothing fetched)
on the page as it is now and returns what is wrong with it: every critical or serious axe
violation, a document wider than the window, and Chinese text broken one character per
line. It also saves a full-page screenshot as ``test-artifacts/screenshots/<name>.png`` for a
person to look at (never compared by pixels).
Any browser test can call it, e.g. the sandbox's hosted pages.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Final

from axe_playwright_python.sync_playwright import Axe

from app.settings import PROJECT_ROOT

SCREENSHOTS: Final = (
    Path(os.environ.get("STOREFRONT_ARTIFACTS", PROJECT_ROOT / "test-artifacts")) / "screenshots"
)
BLOCKING: Final = frozenset({"critical", "serious"})
WIDTHS: Final = (1280, 375)
"""Desktop and a small phone."""

_axe = Axe()


def accessibility_problems(page: Any) -> list[str]:
    """Critical and serious axe-core violations of the page, one line per failing element."""
    results = _axe.run(page)
    problems = []
    for violation in results.response["violations"]:
        if violation.get("impact") not in BLOCKING:
            continue
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node.get("target", []))
            problems.append(f"{violation['impact']} {violation['id']} at {target}: {violation['help']}")
    return problems


def overflow_problems(page: Any) -> list[str]:
    """The document is wider than the window (the buyer would have to scroll sideways)."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return [] if scroll <= client else [f"scrolls sideways: {scroll}px wide in a {client}px window"]


_NARROW_TEXT: Final = """
(() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const cjk = (text.match(/[\u3400-\u9fff]/g) || []).length;
    if (cjk < 3 || !node.parentElement.checkVisibility()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter((r) => r.width > 0);
    const lines = new Set(rects.map((r) => Math.round(r.top)));
    if (lines.size >= cjk) found.push(text);
  }
  return found;
})()
"""
"""Text nodes of three or more Chinese characters laid out one character per line."""


def narrow_text_problems(page: Any) -> list[str]:
    """Chinese text squeezed into a column so narrow that each character takes a line."""
    return [f"one character per line: {text!r}" for text in page.evaluate(_NARROW_TEXT)]


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/ (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


def review(page: Any, name: str) -> list[str]:
    """Everything wrong with the page as shown now (prefixed with ``name``), after a screenshot."""
    screenshot(page, name)
    found = overflow_problems(page) + narrow_text_problems(page) + accessibility_problems(page)
    return [f"{name} ({page.url}): {problem}" for problem in found]


def review_at_widths(page: Any, name: str, widths: tuple[int, ...] = WIDTHS) -> list[str]:
    """``review`` at each width; media queries follow a resize, so the page is not loaded again
    (a reload would repeat a form post or move a polled status on)."""
    problems = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        problems += review(page, f"{name}-{width}")
    return problems
