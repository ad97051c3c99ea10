"""``/dev/mail``: development's mailbox, the messages the file transport wrote under ``var/mail/``.

Mounted only outside production (``app/web/factory.py``): it shows password-reset links. And
only the machine itself may read it (:func:`this_machine_only`): a shop left in development
by mistake on a public address (``STOREFRONT_ENV`` is ``development`` unless set) would
otherwise hand anyone the reset link of any account.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Annotated, Any, Final

import anyio
from litestar import MediaType, Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter
from litestar.response import Template

from app.settings import Settings
from app.web.transactions import READ_ONLY_OPT

__all__ = ("ROUTES", "this_machine_only")

NAME: Final = re.compile(r"\d{1,20}-\d{1,20}\.eml")
SHOWN: Final = 200
"""Newest messages listed; older files stay on disk."""

MailName = Annotated[str, Parameter(max_length=64)]
FORWARDING: Final = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


def _loopback(text: str) -> bool:
    text = text.strip().strip('"').removeprefix("for=").strip('"')
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def this_machine_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """404 unless the request comes from this machine, directly or through proxies on it only.

    A reverse proxy on the same host makes every visitor's peer address loopback, so any hop a
    forwarding header names must be loopback too.
    """
    client = connection.scope.get("client")
    if not client or not _loopback(str(client[0])):
        raise NotFoundException()
    for name, value in connection.scope.get("headers", []):
        if name in FORWARDING:
            hops = bytes(value).decode("latin-1").replace(";", ",").split(",")
            named = [hop for hop in hops if hop.strip() and "=" not in hop.strip().removeprefix("for=")]
            if not named or not all(_loopback(hop) for hop in named):
                raise NotFoundException()


@dataclass(frozen=True, slots=True)
class Listed:
    name: str
    subject: str
    to: str
    date: str


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        message = BytesParser(policy=policy.default).parse(fh)
    assert isinstance(message, EmailMessage)
    return message


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    return body.get_content() if isinstance(body, EmailMessage) else ""


def _listing(directory: Path) -> list[Listed]:
    if not directory.is_dir():
        return []
    names = sorted((p.name for p in directory.iterdir() if NAME.fullmatch(p.name)), reverse=True)[:SHOWN]
    found = []
    for name in names:
        message = _parse(directory / name)
        found.append(Listed(name, str(message["Subject"]), str(message["To"]), str(message["Date"])))
    return found


def _message(directory: Path, name: str) -> EmailMessage:
    path = directory / name
    if not NAME.fullmatch(name) or not path.is_file():
        raise NotFoundException()
    return _parse(path)


@get("/dev/mail", name="dev_mail", guards=[this_machine_only], opt={READ_ONLY_OPT: True})
async def mailbox(settings: Settings) -> Template:
    listed = await anyio.to_thread.run_sync(_listing, settings.var_dir / "mail")
    return Template(template_name="mail/dev_list.html", context={"messages": listed})


@get("/dev/mail/{file:str}", name="dev_mail:message", guards=[this_machine_only], opt={READ_ONLY_OPT: True})
async def mail_message(settings: Settings, file: MailName) -> Template:
    message = await anyio.to_thread.run_sync(_message, settings.var_dir / "mail", file)
    return Template(
        template_name="mail/dev_message.html",
        context={
            "name": file,
            "subject": str(message["Subject"]),
            "to": str(message["To"]),
            "sender": str(message["From"]),
            "date": str(message["Date"]),
            "text": _part(message, "plain"),
        },
    )


@get(
    "/dev/mail/{file:str}/html",
    name="dev_mail:html",
    guards=[this_machine_only],
    opt={READ_ONLY_OPT: True},
    media_type=MediaType.HTML,
)
async def mail_html(settings: Settings, file: MailName) -> Response[Any]:
    """The HTML part as a mail client would get it (the page's CSP leaves its inline styles out)."""
    message = await anyio.to_thread.run_sync(_message, settings.var_dir / "mail", file)
    return Response(_part(message, "html"), media_type=MediaType.HTML)


ROUTES: list[Any] = [mailbox, mail_message, mail_html]
