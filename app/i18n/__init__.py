"""Two languages: English (the source strings) and Simplified Chinese.

The locale of a request lives in a context variable set by ``LocaleMiddleware``, so
templates, flash messages and error pages all speak the buyer's language without
passing it around. Message catalogs are ``.po`` files compiled in memory at start-up.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Final

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
SUPPORTED: Final = ("en", "zh")
DEFAULT: Final = "en"
LANGUAGE_NAMES: Final = {"en": "English", "zh": "简体中文"}
BABEL_LOCALES: Final = {"en": "en_US", "zh": "zh_Hans_CN"}
"""Babel locale used to format numbers and money for each supported language."""
STRIPE_LOCALES: Final = {"en": "en", "zh": "zh"}
COOKIE: Final = "lang"

_current: ContextVar[str] = ContextVar("storefront_locale", default=DEFAULT)


def current_locale() -> str:
    return _current.get()


def set_locale(code: str) -> None:
    _current.set(code if code in SUPPORTED else DEFAULT)


@cache
def translations(code: str) -> NullTranslations:
    """Compile every ``locales/<code>/*.po`` (one file per feature) once per process."""
    merged = NullTranslations()
    if code == DEFAULT:
        return merged
    catalogs = sorted((LOCALES_DIR / code).glob("*.po"))
    if not catalogs:
        return merged
    first: Translations | None = None
    for po in catalogs:
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=code)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        part = Translations(buf)
        if first is None:
            first = part
        else:
            first.merge(part)
    return first if first is not None else merged


def gettext(message: str) -> str:
    return translations(current_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale()).ngettext(singular, plural, n)


def babel_name(code: str | None = None) -> str:
    """Babel's locale name for a language code (the default language's for an unknown one)."""
    return BABEL_LOCALES.get(code or current_locale(), BABEL_LOCALES[DEFAULT])


def babel_locale(code: str | None = None) -> Locale:
    return Locale.parse(BABEL_LOCALES[code or current_locale()])


def negotiate(cookie_value: str | None, accept_language: str | None, user_locale: str | None = None) -> str:
    """Pick a language: the switcher's remembered choice, then the account's, then the browser's."""
    for choice in (cookie_value, user_locale):
        if choice in SUPPORTED:
            return str(choice)
    if accept_language:
        weighted: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            weighted.append((-quality, index, tag.strip().lower()))
        for _q, _i, tag in sorted(weighted):
            primary = tag.split("-")[0]
            if primary in SUPPORTED:
                return primary
    return DEFAULT
