"""The shop's identity: its name, logo, favicon, support address, and the policy pages.

Policies are Markdown files named in settings (``STOREFRONT_TERMS``, ``STOREFRONT_PRIVACY``,
``STOREFRONT_REFUND_POLICY``), rendered with markdown-it-py's CommonMark preset with raw
HTML off, so whatever an operator pastes is shown as text, never run. A Chinese page reads
``<name>.zh.md`` beside the file when there is one. ``{shop_name}`` and ``{support_email}`` in
a policy are replaced by the settings' values. A rendered file is kept until its mtime changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog
from litestar import MediaType, get
from litestar.exceptions import NotFoundException
from litestar.response import Template
from markdown_it import MarkdownIt
from markupsafe import Markup

from app import i18n
from app.i18n import gettext as _
from app.settings import Settings
from app.web.transactions import READ_ONLY_OPT

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class ShopIdentity:
    """What the layout shows about the shop (the template global ``shop``)."""

    name: str
    support_email: str
    logo: str
    favicon: str

    @classmethod
    def of(cls, settings: Settings) -> ShopIdentity:
        return cls(
            name=settings.shop_name,
            support_email=settings.support_email,
            logo=settings.logo,
            favicon=settings.favicon,
        )


POLICIES: Final = ("terms", "privacy", "refunds")


def policy_titles() -> dict[str, str]:
    """The policies' titles in the request's language (footer links and page headings)."""
    return {"terms": _("Terms of service"), "privacy": _("Privacy policy"), "refunds": _("Refund policy")}


def policy_file(settings: Settings, policy: str) -> Path:
    return {
        "terms": settings.terms_path,
        "privacy": settings.privacy_path,
        "refunds": settings.refund_policy_path,
    }[policy]


def localised(path: Path, locale: str) -> Path:
    """``terms.zh.md`` for a Chinese page when it exists, else the named file."""
    if locale != i18n.DEFAULT:
        candidate = path.with_name(f"{path.stem}.{locale}{path.suffix}")
        if candidate.is_file():
            return candidate
    return path


_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
_rendered: dict[tuple[Path, str, str, str], tuple[int, Markup]] = {}


def render_policy(path: Path, settings: Settings) -> Markup:
    """The file as safe HTML; raw HTML in it is escaped, ``javascript:`` links are dropped."""
    fallback = _("the support address on your receipt")
    key = (path, settings.shop_name, settings.support_email, fallback)
    mtime = path.stat().st_mtime_ns
    hit = _rendered.get(key)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    # ``<address>`` is a CommonMark autolink: the address becomes a mailto: link.
    email = f"<{settings.support_email}>" if settings.support_email else fallback
    source = path.read_text(encoding="utf-8")
    source = source.replace("{shop_name}", settings.shop_name).replace("{support_email}", email)
    html = Markup(_markdown.render(source))  # noqa: S704 - markdown-it escapes: html is off
    _rendered[key] = (mtime, html)
    return html


def _policy_page(settings: Settings, policy: str) -> Template:
    path = localised(policy_file(settings, policy), i18n.current_locale())
    try:
        body = render_policy(path, settings)
    except OSError as exc:
        log.error("policy.unreadable", policy=policy, path=str(path), error=type(exc).__name__)
        raise NotFoundException() from exc
    return Template(
        template_name="policies/policy.html",
        context={"policy": policy, "title": policy_titles()[policy], "body": body},
    )


@get("/terms", name="policy:terms", media_type=MediaType.HTML, opt={READ_ONLY_OPT: True})
async def terms(settings: Settings) -> Template:
    return _policy_page(settings, "terms")


@get("/privacy", name="policy:privacy", media_type=MediaType.HTML, opt={READ_ONLY_OPT: True})
async def privacy(settings: Settings) -> Template:
    return _policy_page(settings, "privacy")


@get("/refunds", name="policy:refunds", media_type=MediaType.HTML, opt={READ_ONLY_OPT: True})
async def refunds(settings: Settings) -> Template:
    return _policy_page(settings, "refunds")


def template_globals(settings: Settings) -> dict[str, Any]:
    """The layout's identity globals."""
    return {"shop": ShopIdentity.of(settings), "policy_titles": policy_titles}


ROUTES: list[Any] = [terms, privacy, refunds]
