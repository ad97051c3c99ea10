"""Sign up, sign in, sign out: full HTML pages that work without JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_409_CONFLICT,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.account_page import ROUTES as ACCOUNT_PAGE_ROUTES
from app.accounts.auth import safe_next, sign_in_session
from app.accounts.limits import clear_account, limit_by_account, limit_by_address
from app.accounts.models import User
from app.accounts.password_reset import ROUTES as PASSWORD_RESET_ROUTES
from app.accounts.service import EmailTaken, authenticate, check_sign_up, create_user, normalise_email
from app.accounts.verification import ROUTES as VERIFICATION_ROUTES
from app.accounts.verification import needs_verification, send_verification
from app.catalogue.reload import CatalogueHolder
from app.checkout.routes import buy_pack
from app.db.sql import run
from app.i18n import gettext as _
from app.i18n.web import language_cookie
from app.settings import Settings
from app.stripe_gateway import StripeGateway
from app.web.sessions import rotate_session
from app.web.transactions import READ_ONLY_OPT


@dataclass(frozen=True, slots=True)
class Buying:
    """The pack a signed-out visitor chose on the pricing page, shown while they sign in or up."""

    id: str
    name: str
    price: str


def _buying(catalogue: CatalogueHolder, pack_id: str | None) -> Buying | None:
    """Only a pack on sale in the catalogue; anything else is dropped (the form then just signs in)."""
    pack = catalogue.catalogue.get_active(pack_id.strip()) if pack_id else None
    if pack is None:
        return None
    locale = i18n.current_locale()
    return Buying(pack.id, pack.name.get(locale), pack.price_display(i18n.babel_name(locale)))


def _page(
    name: str,
    *,
    next_path: str,
    email: str = "",
    errors: Mapping[str, str | None] | None = None,
    status: int = 200,
    buying: Buying | None = None,
) -> Template:
    return Template(
        template_name=f"accounts/{name}.html",
        context={"email": email, "next": next_path, "errors": errors or {}, "buying": buying},
        status_code=status,
    )


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One posted sign-in or sign-up form: what its page keeps when shown again (email, next, pack)."""

    page: str
    email: str
    password: str
    next_path: str
    buying: Buying | None

    @classmethod
    async def read(cls, page: str, request: Request[Any, Any, Any], catalogue: CatalogueHolder) -> _Attempt:
        """The fields as strings; anything missing or odd becomes an empty string."""
        form = await request.form()
        fields = {name: form.get(name) for name in ("email", "password", "next", "pack")}
        text = {name: value if isinstance(value, str) else "" for name, value in fields.items()}
        return cls(
            page,
            normalise_email(text["email"]),
            text["password"],
            safe_next(text["next"]),
            _buying(catalogue, text["pack"]),
        )

    def again(self, errors: Mapping[str, str | None], status: int) -> Template:
        return _page(
            self.page,
            email=self.email,
            next_path=self.next_path,
            errors=errors,
            status=status,
            buying=self.buying,
        )


@dataclass(frozen=True, slots=True)
class _Shop:
    """What going straight on to Checkout needs (the sign-in and sign-up handlers' dependencies)."""

    db: AsyncSession
    catalogue: CatalogueHolder
    stripe: StripeGateway
    settings: Settings


async def _signed_in(
    request: Request[Any, Any, Any], user: User, attempt: _Attempt, *, shop: _Shop
) -> Response[Any]:
    """Rotate the session, remember the account's language in this browser, and go on: to the
    chosen pack's Checkout when one came from the pricing page, else to ``next``."""
    sign_in_session(request, user)
    cookies = []
    if i18n.COOKIE not in request.cookies and user.locale in i18n.SUPPORTED:
        cookies.append(language_cookie(user.locale))
        i18n.set_locale(user.locale)
    path, buying = attempt.next_path, attempt.buying
    if buying is not None and needs_verification(shop.settings, user):
        path = "/verify-email"
    elif buying is not None:
        response = await buy_pack(shop.db, shop.catalogue, shop.stripe, shop.settings, user, buying.id)
        # Only a redirect (Checkout, or the failed-order page) keeps this transaction: a 4xx page
        # (a purchase limit) would roll the sign-up back. Then the buyer lands on ``next``.
        if (response.status_code or 200) < 400:
            response.cookies.extend(cookies)
            return response
    return Redirect(path=path, status_code=HTTP_303_SEE_OTHER, cookies=cookies)


NextPath = Annotated[str | None, QueryParameter(name="next", required=False, max_length=2000)]
PackId = Annotated[str | None, QueryParameter(name="pack", required=False, max_length=64)]


@get("/sign-up", name="sign_up", opt={READ_ONLY_OPT: True})
async def sign_up_page(
    catalogue: CatalogueHolder, next_path: NextPath = None, pack: PackId = None
) -> Template:
    return _page("sign_up", next_path=safe_next(next_path), buying=_buying(catalogue, pack))


@post("/sign-up", name="sign_up:submit", guards=[limit_by_address])
async def sign_up(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    settings: Settings,
) -> Response[Any]:
    """Create the account; a taken email is found by the unique constraint, and nothing is written."""
    attempt = await _Attempt.read("sign_up", request, catalogue)
    email = attempt.email
    problems = check_sign_up(email, attempt.password)
    if problems:
        return attempt.again({"email": problems.email, "password": problems.password}, HTTP_400_BAD_REQUEST)
    try:
        # Only an explicit choice (the switcher's cookie) is saved, not a guess from the browser.
        chosen = request.cookies.get(i18n.COOKIE)
        locale = chosen if chosen in i18n.SUPPORTED else None
        user = await create_user(db_session, email, attempt.password, locale=locale)
    except EmailTaken:
        errors = {"email": _("An account with this email already exists. Please sign in instead.")}
        return attempt.again(errors, HTTP_409_CONFLICT)
    if settings.verify_email:
        await run(db_session, send_verification, user.id)
    flash(request, _("Welcome! Your account is ready."), category="success")
    return await _signed_in(request, user, attempt, shop=_Shop(db_session, catalogue, stripe, settings))


@get("/sign-in", name="sign_in", opt={READ_ONLY_OPT: True})
async def sign_in_page(
    catalogue: CatalogueHolder, next_path: NextPath = None, pack: PackId = None
) -> Template:
    return _page("sign_in", next_path=safe_next(next_path), buying=_buying(catalogue, pack))


@post("/sign-in", name="sign_in:submit", guards=[limit_by_address])
async def sign_in(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    catalogue: CatalogueHolder,
    stripe: StripeGateway,
    settings: Settings,
) -> Response[Any]:
    """Check the password; an unknown email and a wrong password get the same words."""
    attempt = await _Attempt.read("sign_in", request, catalogue)
    email = attempt.email
    if not email or not attempt.password:
        errors = {"form": _("Please enter your email address and password.")}
        return attempt.again(errors, HTTP_400_BAD_REQUEST)
    await limit_by_account(request, email)  # counted before the password is checked
    user = await authenticate(db_session, email, attempt.password)
    if user is None:
        errors = {"form": _("That email and password do not match an account.")}
        return attempt.again(errors, HTTP_401_UNAUTHORIZED)
    await clear_account(request, db_session, email)
    return await _signed_in(request, user, attempt, shop=_Shop(db_session, catalogue, stripe, settings))


@post("/sign-out", name="sign_out")
async def sign_out(request: Request[Any, Any, Any]) -> Redirect:
    """Forget the session (a new id for what remains) and go to the pricing page."""
    request.set_session({})
    rotate_session(request)
    flash(request, _("You have signed out."), category="success")
    return Redirect(path="/", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [
    sign_up_page,
    sign_up,
    sign_in_page,
    sign_in,
    sign_out,
    *ACCOUNT_PAGE_ROUTES,
    *PASSWORD_RESET_ROUTES,
    *VERIFICATION_ROUTES,
]
"""Every route of the accounts package, the account page included; ``app/web/factory.py`` mounts them."""
