"""``storefront pricing ...`` commands.

``check`` is meant for humans and CI alike: exit status 1 with every problem
listed, or 0 with a table showing what customers will be offered. ``diff`` prints
per pack what a file changes of the live catalogue (exit 1 when it differs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, NoReturn

import click
from rich.console import Console
from rich.table import Table

from .diff import compare_with_file
from .loader import PRICING_ENV, CatalogueError, default_pricing_path, load_catalogue
from .model import Catalogue, format_unit_price

__all__ = ["pricing_group"]


@click.group("pricing", help="Inspect the pricing catalogue (pricing.toml).")
def pricing_group() -> None:
    """Container for the pricing sub-commands; registered by the storefront CLI."""


_pricing_file = click.argument(
    "file",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=PRICING_ENV,
    default="pricing.toml",
)
"""FILE, defaulting to $STOREFRONT_PRICING or ./pricing.toml like the shop."""


@pricing_group.command("check")
@_pricing_file
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


@pricing_group.command("diff")
@_pricing_file
@click.option(
    "--live",
    "live_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The catalogue being served (default: $STOREFRONT_PRICING or ./pricing.toml).",
)
def diff_command(file: Path, live_file: Path | None) -> None:
    """Show per pack what FILE changes of the live catalogue (exit 1 when it differs, 2 when broken).

    The shop serves the last valid version of its configured file; edit a copy, see here what
    saving it over the configured one would change for buyers.
    """
    live_path = live_file if live_file is not None else default_pricing_path()
    try:
        live = load_catalogue(live_path)
    except CatalogueError as exc:
        _problems(live_path, exc.problems)
    compared = compare_with_file(live, file)
    if compared.problems:
        _problems(file, compared.problems)
    if compared.same:
        click.echo(f"{file}: no differences from {live_path} (version {live.version})")
        return
    for change in compared.changes:
        click.echo(f"{change.change.value:8} {change.pack_id}")
        for field in change.fields:
            click.echo(f"         {field.field}: {field.before} -> {field.after}")
    count = len(compared.changes)
    packs = f"{count} pack{'s' if count != 1 else ''}"
    click.echo(f"{file}: {packs} differ from {live_path} (version {live.version})")
    raise SystemExit(1)


def _problems(file: Path, problems: tuple[str, ...]) -> NoReturn:
    count = len(problems)
    click.echo(f"{file}: {count} problem{'s' if count != 1 else ''}", err=True)
    for problem in problems:
        click.echo(f"  - {problem}", err=True)
    raise SystemExit(2)
