"""Every message the shop can show has a Simplified Chinese translation."""

from __future__ import annotations

from pathlib import Path

from app.i18n import check, gettext, set_locale, translations


def test_every_message_is_translated_into_chinese() -> None:
    gaps = check.missing()
    assert not gaps, "untranslated (add them to app/i18n/locales/zh/<feature>.po):\n" + "\n".join(
        f"  {m.where}: {m.msgid!r}" for m in gaps
    )


def test_the_check_finds_an_untranslated_string(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "templates" / "page.html").write_text(
        '<p>{{ _("Sign in") }} {{ _("Zebra crossing xyzzy") }}</p>'
    )
    (tmp_path / "app" / "mod.py").write_text('from app.i18n import gettext as _\nX = _("Quokka plover")\n')
    found = {m.msgid for m in check.missing(tmp_path)}
    assert found == {"Zebra crossing xyzzy", "Quokka plover"}
    assert check.main() in (0, 1)


def test_catalogs_load_and_translate() -> None:
    translations.cache_clear()
    set_locale("zh")
    try:
        assert gettext("Sign in") == "登录"
        assert gettext("Too many attempts. Please wait a minute and try again.") != (
            "Too many attempts. Please wait a minute and try again."
        )
    finally:
        set_locale("en")
    assert gettext("Sign in") == "Sign in"
