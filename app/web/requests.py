"""The app's request class: htmx details, and form bodies that cannot be decoded are the client's fault."""

from __future__ import annotations

from litestar.datastructures import FormMultiDict
from litestar.exceptions import ClientException
from litestar.plugins.htmx import HTMXRequest

__all__ = ["StorefrontRequest"]


class StorefrontRequest(HTMXRequest):
    """Litestar decodes multipart fields with the part's charset and lets the error escape as a 500.

    The CSRF middleware reads the form before any handler (with this class, the app's), so a
    field of bytes that are not UTF-8, or a made-up ``charset``, is answered 400 here.
    """

    async def form(self) -> FormMultiDict:
        try:
            return await super().form()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ClientException("the form could not be decoded") from exc
