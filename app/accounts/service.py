"""Account rules: email and password checks, argon2 hashing off the event loop, sign-up and sign-in.

Hashing takes tens of milliseconds of CPU on purpose, so it runs in a worker thread to keep
the event loop answering other buyers meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from app.accounts.models import User
from app.i18n import gettext as _

EMAIL_MAX = 320
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
PASSWORD_MIN_SCORE = 2
"""zxcvbn's score (0-4): below 2 a password falls to an online or cheap offline guessing attack."""
PASSWORD_JUDGED = 72
"""zxcvbn refuses longer input (its time grows quickly with length); 72 characters tell enough."""
COMMON_RANK = 10_000
"""A password within this rank of zxcvbn's leaked-password list is called common by name."""

_hasher = PasswordHasher()


class EmailTaken(Exception):
    """Somebody already signed up with this email (found by the unique constraint)."""


@dataclass(frozen=True, slots=True)
class Problems:
    """Form errors by field name, already in the buyer's language."""

    email: str | None = None
    password: str | None = None

    def __bool__(self) -> bool:
        return bool(self.email or self.password)


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def email_problem(email: str) -> str | None:
    """A sane check, not RFC 5322: one @, something on each side, a dot in the domain, no spaces."""
    if not email:
        return _("Please enter your email address.")
    local, at, domain = email.rpartition("@")
    if (
        len(email) > EMAIL_MAX
        or not at
        or not local
        or "@" in local
        or "." not in domain.strip(".")
        or ".." in domain
        or any(c.isspace() or ord(c) < 32 for c in email)
    ):
        return _("Please enter a valid email address, like name@example.com.")
    return None


def password_problem(password: str, email: str = "") -> str | None:
    """Length, then guessability: the length rule alone let ``password`` and eight spaces through.

    zxcvbn judges the password against leaked-password lists, names, words, keyboard patterns,
    repeats and the account's own email; its score decides and our message says why.
    """
    if len(password) < PASSWORD_MIN:
        return _("Your password must be at least 8 characters long.")
    if len(password) > PASSWORD_MAX:
        return _("Your password must be at most 1,024 characters long.")
    local = email.partition("@")[0]
    user_inputs = [value for value in (email, local) if value]
    judged = password[:PASSWORD_JUDGED]
    if email and email in password.lower():
        return _("Your password must not contain your email address.")
    result = zxcvbn(judged, user_inputs=user_inputs)
    if result["score"] >= PASSWORD_MIN_SCORE:
        return None
    matches = result["sequence"]
    if any(m.get("dictionary_name") == "user_inputs" for m in matches):
        return _("Your password must not contain your email address.")
    if any(
        m.get("dictionary_name") == "passwords" and m.get("rank", COMMON_RANK) < COMMON_RANK for m in matches
    ):
        return _("This is one of the most common passwords. Please choose another.")
    return _(
        "This password is too easy to guess. Use a few uncommon words, and avoid names, dates, "
        "repeated characters and keyboard patterns."
    )


def check_sign_up(email: str, password: str) -> Problems:
    return Problems(email=email_problem(email), password=password_problem(password, email))


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both failures take the same time."""
    return _hasher.hash("not-a-real-password-just-for-timing")


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an unknown account still pays the full hashing cost."""
    if stored_hash is None:
        await anyio.to_thread.run_sync(lambda: _verify(_dummy_hash(), password))
        return False
    return await anyio.to_thread.run_sync(_verify, stored_hash, password)


async def create_user(
    db_session: AsyncSession, email: str, password: str, *, locale: str | None = None, is_admin: bool = False
) -> User:
    """Insert a user; the unique email constraint, not a prior look-up, decides whether it is taken.

    On a duplicate the whole transaction is rolled back (nothing else was written in it) and
    ``EmailTaken`` is raised.
    """
    user = User(email=email, password_hash=await hash_password(password), locale=locale, is_admin=is_admin)
    db_session.add(user)
    try:
        await db_session.flush()
    except IntegrityError as exc:
        await db_session.rollback()
        raise EmailTaken(email) from exc
    return user


async def authenticate(db_session: AsyncSession, email: str, password: str) -> User | None:
    """The user whose email and password match, else ``None`` (the caller says so in one generic message)."""
    user = None
    if email and len(email) <= EMAIL_MAX and len(password) <= PASSWORD_MAX:
        user = (await db_session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    ok = await verify_password(user.password_hash if user else None, password)
    if not ok or user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return user
