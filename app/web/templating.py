"""The one Jinja environment: i18n extension, money filters, the shared layout's globals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined, pass_context
from jinja2.runtime import Context
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from app import i18n
from app.accounts.auth import signed_in_user
from app.i18n.web import switcher_next
from app.settings import PROJECT_ROOT
from app.web.static_assets import static_url

TEMPLATES = PROJECT_ROOT / "templates"


@pass_context
def pending_flashes(context: Context) -> list[dict[str, Any]]:
    """Flash messages of this request, or none where no session middleware ran (e.g. a 404)."""
    request = context.get("request")
    session = request.scope.get("session") if request is not None else None
    if not isinstance(session, dict):
        return []
    messages: list[dict[str, Any]] = session.pop("_messages", [])
    return messages


def make_environment(
    directory: Path = TEMPLATES, *, strict: bool = False, auto_reload: bool = False
) -> Environment:
    """A Jinja environment whose ``_()`` speaks the request's language."""
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined if strict else Undefined,
        auto_reload=auto_reload,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    env.globals.update(
        signed_in_user=signed_in_user,
        static_url=static_url,
        switcher_next=switcher_next,
        current_locale=i18n.current_locale,
        language_names=i18n.LANGUAGE_NAMES,
        supported_locales=i18n.SUPPORTED,
        pending_flashes=pending_flashes,
    )
    return env


def template_config(*, debug: bool = False, **globals_: Any) -> TemplateConfig[JinjaTemplateEngine]:
    """Litestar's template config around our environment; templates recompile only in debug."""
    env = make_environment(strict=debug, auto_reload=debug)
    env.globals.update(globals_)
    return TemplateConfig(instance=JinjaTemplateEngine(engine_instance=env))
