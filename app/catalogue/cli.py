"""``storefront pricing ...`` commands.

``check`` is meant for humans and CI alike: exit status 1 with every problem
listed, or 0 with a table showing what customers will be offered.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import click
from rich.console import Console
from rich.table import Table

from .loader import PRICING_ENV, CatalogueError, load_catalogue
from .model import Catalogue, format_unit_price

__all__ = ["pricing_group"]


@click.group("pricing", help="Inspect the pricing catalogue (pricing.toml).")
def pricing_group() -> None:
    """Container for the pricing sub-commands; registered by the storefront CLI."""


@pricing_group.command("check")
@click.argument(
    "file",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=PRICING_ENV,
    default="pricing.toml",
)
def check_command(file: Path) -> None:
    """Validate FILE (default: $STOREFRONT_PRICING or ./pricing.toml) and show its packs."""
    try:
        catalogue = load_catalogue(file)
    except CatalogueError as exc:
        count = len(exc.problems)
        click.echo(f"{file}: {count} problem{'s' if count != 1 else ''}", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1) from None
    # Wide fixed width when not on a terminal so CI logs and tests don't wrap cells.
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(_packs_table(catalogue))
    click.echo(
        f"{file}: OK, {len(catalogue.packs)} packs, {len(catalogue.assets)} assets, "
        f"version {catalogue.version}"
    )


def _packs_table(catalogue: Catalogue) -> Table:
    table = Table(title=f"Pricing catalogue {catalogue.version}")
    for header in ("id", "asset", "units", "price", "currency", "unit price", "active"):
        justify: Literal["left", "right"] = "right" if header in ("units", "price", "unit price") else "left"
        table.add_column(header, justify=justify)
    # File order is the operator's mental model; group by asset for readability.
    asset_rank = {a.id: i for i, a in enumerate(catalogue.assets)}
    for pack in sorted(catalogue.packs, key=lambda p: (asset_rank.get(p.asset, 0), p.order, p.id)):
        asset = catalogue.asset(pack.asset)
        units = f"{pack.units:,}" + (f" + {pack.bonus:,}" if pack.bonus else "")
        unit_price = format_unit_price(pack, asset) if asset else str(pack.unit_price)
        table.add_row(
            pack.id,
            pack.asset,
            units,
            str(pack.price),
            pack.currency,
            unit_price,
            "yes" if pack.active else "no",
            style=None if pack.active else "dim",
        )
    return table
