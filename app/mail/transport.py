"""Where a message goes: an SMTP server (``aiosmtplib``), or files under ``var/mail/``.

``STOREFRONT_SMTP_URL``: ``smtp://[user:password@]host[:port]`` (port 587 by default; STARTTLS
whenever the server offers it) or ``smtps://...`` (TLS from the start, port 465). Without one,
each message is written to ``var/mail/<time>-<id>.eml`` for ``/dev/mail`` to list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import aiosmtplib
import anyio

__all__ = ("FileTransport", "SMTPTransport", "Transport", "TransportError", "make_transport")


class TransportError(Exception):
    """The message was not handed over; the worker tries again later."""


class Transport(Protocol):
    async def send(self, message: EmailMessage, *, message_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class SMTPTransport:
    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SMTPTransport:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(
                "STOREFRONT_SMTP_URL must look like smtp://user:password@host:587 or smtps://..."
            )
        tls = parsed.scheme == "smtps"
        return cls(
            hostname=parsed.hostname,
            port=parsed.port or (465 if tls else 587),
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            implicit_tls=tls,
        )

    async def send(self, message: EmailMessage, *, message_id: int) -> None:
        try:
            # start_tls=None: STARTTLS when the server offers it (and never for smtps://, already TLS).
            await aiosmtplib.send(
                message,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                start_tls=False if self.implicit_tls else None,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class FileTransport:
    """Development's mail: one ``.eml`` file per message (written whole, then renamed into place)."""

    directory: Path

    async def send(self, message: EmailMessage, *, message_id: int) -> None:
        name = f"{time.time_ns()}-{message_id}.eml"
        data = message.as_bytes()

        def write() -> None:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = self.directory / f".{name}.part"
            partial.write_bytes(data)
            partial.replace(self.directory / name)

        try:
            await anyio.to_thread.run_sync(write)
        except OSError as exc:
            raise TransportError(str(exc)) from exc


def make_transport(smtp_url: str, var_dir: Path) -> Transport:
    return SMTPTransport.from_url(smtp_url) if smtp_url else FileTransport(var_dir / "mail")
