"""The hosted pages' language: English or Simplified Chinese, chosen as Stripe chooses.

A session's `locale` decides; `auto` (and no locale) follows the browser's Accept-Language, and
every other locale falls back to English, the only other language the sandbox speaks. The
translations are the shop's own catalogs (`app/i18n/locales/zh/*.po`, the sandbox's strings in
`sandbox.po`), read by path because the sandbox imports nothing from the rest of `app`; that keeps
one place where `make messages` checks that every string has its Chinese.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Final

from babel import Locale
from babel.messages.pofile import read_po

CATALOGS: Final = Path(__file__).resolve().parents[1] / "i18n" / "locales"
LANGUAGES: Final = ("en", "zh")
HTML_LANG: Final = {"en": "en", "zh": "zh-Hans"}
BABEL: Final = {"en": "en_US", "zh": "zh_Hans_CN"}


def _(message: str) -> str:
    """Marks a message for extraction; the page translates it when it renders it."""
    return message


# Messages made outside the pages (card checks, declines) that the hosted page shows translated.
SHOWN_ON_PAGE: Final = (
    _("Your email address is invalid."),
    _("Your card number is invalid."),
    _("Your card's expiration date is incomplete."),
    _("Your card's expiration year is in the past."),
    _("Your card's security code is incomplete."),
    _("Your card was declined."),
    _("Your card has insufficient funds."),
    _("Your card has expired."),
    _("Your card's security code is incorrect."),
    _("An error occurred while processing your card. Try again in a little bit."),
    _(
        "We are unable to authenticate your payment method. Please choose a different payment method "
        "and try again."
    ),
    _("Your IBAN is invalid."),
    _("Your account number is invalid."),
)


def _accepted(header: str | None) -> list[str]:
    """Accept-Language tags, most preferred first (q-values honoured, ties in header order)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.lower()))
    return [tag for _q, _p, tag in sorted(ranked)]


def page_language(locale: str | None, accept_language: str | None) -> str:
    """`zh` or `en` for a session locale (`auto`/None: the browser's first language we speak)."""
    if locale and locale != "auto":
        return "zh" if locale.lower().startswith("zh") else "en"
    for tag in _accepted(accept_language):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return "en"


@cache
def _messages(language: str) -> dict[str, str]:
    found: dict[str, str] = {}
    if language == "en":
        return found
    for po in sorted((CATALOGS / language).glob("*.po")):
        with po.open("rb") as fh:
            for entry in read_po(fh, locale=language):
                wanted = isinstance(entry.id, str) and entry.id and not entry.fuzzy
                if wanted and isinstance(entry.string, str) and entry.string:
                    found[str(entry.id)] = entry.string
    return found


def translator(language: str) -> Callable[[str], str]:
    """`gettext` for one language: a message's translation, or the message itself."""
    messages = _messages(language)
    return lambda message: messages.get(message, message)


def country_names(language: str, codes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(code, name in the page's language) sorted by name, for the billing country list."""
    territories = Locale.parse(BABEL[language]).territories
    return sorted(((code, str(territories.get(code, code))) for code in codes), key=lambda pair: pair[1])
