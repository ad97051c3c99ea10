"""What each message says, in the account's language, as plain text and HTML.

The words live here (through gettext, so ``app/i18n/check.py`` holds them to a Chinese
translation) and the two layouts in ``templates/mail/``: every message is a few paragraphs,
an optional table of details and an optional button, so one layout per format serves all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from jinja2 import Environment

from app import i18n
from app.catalogue.model import Catalogue
from app.catalogue.money import format_money
from app.i18n import gettext as _
from app.web.templating import make_environment

__all__ = ("Composer", "Content", "OrderFacts", "Recipient")


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    locale: str


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The order a receipt or refund notice is about, as the database has it."""

    id: int
    pack_id: str
    pack_name: str
    asset: str
    units: int
    bonus: int
    amount: int
    currency: str
    receipt_url: str | None = None
    amount_discount: int | None = None
    amount_tax: int | None = None
    amount_paid: int | None = None
    """What was charged (NULL on orders paid before it was recorded: ``amount``)."""

    @property
    def paid(self) -> int:
        return self.amount if self.amount_paid is None else self.amount_paid


@dataclass(slots=True)
class Content:
    subject: str
    paragraphs: list[str]
    details: list[tuple[str, str]] = field(default_factory=list)
    action: tuple[str, str] | None = None
    """(label, URL) of the one thing to do."""


class Composer:
    """Builds an ``EmailMessage`` for one outbox row; the Jinja environment is made once."""

    def __init__(
        self, *, base_url: str, sender: str, catalogue: Callable[[], Catalogue] | None = None
    ) -> None:
        """``catalogue`` is asked at each message: the live one, as hot reload left it."""
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self._catalogue = catalogue
        self._html: Environment = make_environment()
        self._text: Environment = self._html.overlay(autoescape=False)

    @property
    def catalogue(self) -> Catalogue | None:
        return self._catalogue() if self._catalogue is not None else None

    def _units(self, asset: str, count: int, locale: str) -> str:
        catalogue = self.catalogue
        label = catalogue.unit_label(asset, count, locale) if catalogue is not None else asset
        return f"{count:,} {label}"

    def _pack_name(self, order: OrderFacts, locale: str) -> str:
        catalogue = self.catalogue
        pack = catalogue.get(order.pack_id) if catalogue is not None else None
        return pack.name.get(locale) if pack is not None else order.pack_name

    def _money(self, minor: int, currency: str, locale: str) -> str:
        return format_money(minor, currency, i18n.babel_name(locale))

    def receipt(self, order: OrderFacts, locale: str) -> Content:
        name = self._pack_name(order, locale)
        total = self._units(order.asset, order.units + order.bonus, locale)
        details = [
            (_("Order number"), f"#{order.id}"),
            (_("Pack"), name),
            (_("Units"), self._units(order.asset, order.units, locale)),
        ]
        if order.bonus:
            details.append((_("Bonus"), self._units(order.asset, order.bonus, locale)))
        if order.amount_discount or order.amount_tax:
            details.append((_("Price"), self._money(order.amount, order.currency, locale)))
        if order.amount_discount:
            details.append((_("Discount"), "-" + self._money(order.amount_discount, order.currency, locale)))
        if order.amount_tax:
            details.append((_("Tax"), self._money(order.amount_tax, order.currency, locale)))
        details.append((_("Amount paid"), self._money(order.paid, order.currency, locale)))
        action = (_("View the payment receipt"), order.receipt_url) if order.receipt_url else None
        return Content(
            subject=_("Your receipt for %(pack)s (order #%(order)s)") % {"pack": name, "order": order.id},
            paragraphs=[
                _("Thank you for your purchase. We added %(units)s to your balance.") % {"units": total},
                _("Your balance and purchases are on your account page: %(url)s")
                % {"url": self.base_url + "/account"},
            ],
            details=details,
            action=action,
        )

    def refund(self, order: OrderFacts, locale: str, *, refunded: int, units_taken: int) -> Content:
        name = self._pack_name(order, locale)
        money = {
            "refunded": self._money(refunded, order.currency, locale),
            "paid": self._money(order.paid, order.currency, locale),
            "order": order.id,
        }
        first = (
            _("Your order #%(order)s has been refunded in full: %(refunded)s.") % money
            if refunded >= order.paid
            else _("Your order #%(order)s has been partly refunded: %(refunded)s of %(paid)s so far.") % money
        )
        return Content(
            subject=_("Refund for order #%(order)s") % {"order": order.id},
            paragraphs=[
                first,
                _("%(units)s of this purchase were taken back from your balance.")
                % {"units": self._units(order.asset, units_taken, locale)},
                _("Banks usually take 5 to 10 days to show a refund on your statement."),
            ],
            details=[(_("Order number"), f"#{order.id}"), (_("Pack"), name)],
            action=(_("See your account"), self.base_url + "/account"),
        )

    def password_reset(self, email: str, token: str, minutes: int) -> Content:
        return Content(
            subject=_("Reset your password"),
            paragraphs=[
                _("Somebody, hopefully you, asked to reset the password of the account %(email)s.")
                % {"email": email},
                _("The link below works once, for %(minutes)s minutes. It signs out every other device.")
                % {"minutes": minutes},
                _("If you did not ask for this, ignore this email: your password stays as it is."),
            ],
            action=(_("Choose a new password"), f"{self.base_url}/reset-password/{token}"),
        )

    def verify_email(self, email: str, token: str) -> Content:
        return Content(
            subject=_("Confirm your email address"),
            paragraphs=[
                _("Please confirm that %(email)s is your email address, so you can buy packs in the shop.")
                % {"email": email},
                _("If you did not create an account, ignore this email."),
            ],
            action=(_("Confirm my email address"), f"{self.base_url}/verify-email/{token}"),
        )

    def build(self, content: Content, to: Recipient) -> EmailMessage:
        """The message with a text part and an HTML alternative, rendered in ``to.locale``."""
        context: dict[str, Any] = {"content": content, "lang": to.locale, "shop_url": self.base_url}
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to.email
        message["Subject"] = content.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].strip(">") or None)
        message.set_content(self._text.get_template("mail/message.txt").render(context))
        message.add_alternative(self._html.get_template("mail/message.html").render(context), subtype="html")
        return message
