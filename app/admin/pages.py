"""What every admin page shows around its content: the nav and the catalogue's status banner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from litestar.exceptions import NoRouteMatchFoundException
from litestar.response import Template

from app.catalogue.reload import CatalogueHolder
from app.i18n import gettext as _

__all__ = ("CatalogueStatus", "NavLink", "admin_page", "catalogue_status", "nav_links")


@dataclass(frozen=True, slots=True)
class NavLink:
    label: str
    url: str
    current: bool


@dataclass(frozen=True, slots=True)
class CatalogueStatus:
    version: str
    loaded_at: datetime
    problems: list[str]
    path: str

    @property
    def broken(self) -> bool:
        return bool(self.problems)


def _nav_names() -> list[tuple[str, str]]:
    """Route name and label of each section, in the nav's order (labels in the request's language)."""
    return [
        ("admin:dashboard", _("Dashboard")),
        ("admin:orders", _("Orders")),
        ("admin:customers", _("Customers")),
        ("admin:events", _("Events")),
        ("admin:catalogue", _("Catalogue")),
        ("admin:audit", _("Audit")),
        ("admin:ledger", _("Ledger")),
    ]


def route_url(request: Request[Any, Any, Any], name: str, **params: Any) -> str | None:
    """The route's path, or None while no handler of that name is mounted (sections come one by one)."""
    try:
        return request.app.route_reverse(name, **params)
    except NoRouteMatchFoundException:
        return None


def nav_links(request: Request[Any, Any, Any], section: str) -> list[NavLink]:
    """The sections that exist in this app; ``section`` (a route name) is marked current."""
    links = []
    for name, label in _nav_names():
        url = route_url(request, name)
        if url is not None:
            links.append(NavLink(label, url, name == section))
    return links


def catalogue_status(holder: CatalogueHolder) -> CatalogueStatus:
    return CatalogueStatus(
        version=holder.version,
        loaded_at=datetime.fromtimestamp(holder.loaded_at, UTC),
        problems=holder.problems,
        path=str(holder.path),
    )


def admin_page(
    request: Request[Any, Any, Any],
    template: str,
    context: Mapping[str, Any],
    *,
    section: str,
    status_code: int = 200,
) -> Template:
    """A page of ``templates/admin/`` with the nav and the catalogue banner filled in."""
    holder: CatalogueHolder = request.app.state["catalogue"]
    return Template(
        template_name=f"admin/{template}",
        context={
            "admin_nav": nav_links(request, section),
            "catalogue_status": catalogue_status(holder),
            **context,
        },
        status_code=status_code,
    )
