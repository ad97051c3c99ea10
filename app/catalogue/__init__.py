"""Pricing catalogue: what can be bought, for how much, loaded from ``pricing.toml``."""

from .loader import CatalogueError, default_pricing_path, load_catalogue, parse_catalogue, validate_catalogue
from .model import Asset, Catalogue, Pack, Text, format_unit_price, unit_price
from .money import MoneyError, format_money, from_minor, to_minor
from .reload import CatalogueHolder

__all__ = [
    "Asset",
    "Catalogue",
    "CatalogueError",
    "CatalogueHolder",
    "MoneyError",
    "Pack",
    "Text",
    "default_pricing_path",
    "format_money",
    "format_unit_price",
    "from_minor",
    "load_catalogue",
    "parse_catalogue",
    "to_minor",
    "unit_price",
    "validate_catalogue",
]
