"""``storefront users``: make or promote an admin, list accounts.

Runs against the configured database with its own engine and one transaction per command.
"""

from __future__ import annotations

import asyncio

import click
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.accounts.models import User
from app.accounts.service import email_problem, hash_password, normalise_email, password_problem
from app.db.config import make_engine
from app.settings import get_settings


@click.group(name="users")
def users_group() -> None:
    """Manage accounts."""


async def _promote(email: str, password: str | None) -> bool:
    """Promote the account with ``email`` (resetting its password when one is given); False if absent."""
    engine = make_engine(get_settings())
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
            values: dict[str, object] = {"is_admin": True}
            if password is not None:
                values["password_hash"] = await hash_password(password)
            result = await session.execute(update(User).where(User.email == email).values(**values))
            return bool(getattr(result, "rowcount", 0))
    finally:
        await engine.dispose()


async def _create(email: str, password: str) -> bool:
    """Insert a new admin; False when the email was taken meanwhile (the unique key decides)."""
    engine = make_engine(get_settings())
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            try:
                async with session.begin():
                    session.add(User(email=email, password_hash=await hash_password(password), is_admin=True))
            except IntegrityError:
                return False
            return True
    finally:
        await engine.dispose()


def _ask_password() -> str:
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@users_group.command(name="create-admin")
@click.argument("email")
@click.option("--password", default=None, help="The password; asked for (twice) when a new admin needs one.")
def create_admin(email: str, password: str | None) -> None:
    """Make EMAIL an admin: promote the existing account, or create one."""
    email = normalise_email(email)
    if problem := email_problem(email):
        raise click.BadParameter(problem, param_hint="EMAIL")
    if password is not None and (problem := password_problem(password, email)):
        raise click.BadParameter(problem, param_hint="--password")
    if asyncio.run(_promote(email, password)):
        click.echo(f"{email} is now an admin.")
        return
    if password is None:
        password = _ask_password()
        if problem := password_problem(password, email):
            raise click.UsageError(problem)
    if asyncio.run(_create(email, password)) or asyncio.run(_promote(email, password)):
        click.echo(f"Created admin {email}.")
        return
    raise click.ClickException(f"could not create or promote {email}")


@users_group.command(name="list")
def list_users() -> None:
    """Print every account: id, email, admin flag, language, created."""

    async def rows() -> list[User]:
        engine = make_engine(get_settings())
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                return list((await session.execute(select(User).order_by(User.id))).scalars())
        finally:
            await engine.dispose()

    for user in asyncio.run(rows()):
        admin = "admin" if user.is_admin else "-"
        created = f"{user.created_at:%Y-%m-%d %H:%M}"
        click.echo(f"{user.id}\t{user.email}\t{admin}\t{user.locale or '-'}\t{created}")
