"""The ``storefront`` command as an operator runs it: real processes of the installed script.

In-process runners would share this process's logging and environment; these run the entry
point exactly as a shell does, with a clean environment of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from app.api.cli import api_keys_group
from app.cli import DEV_SERVER_FILE, StorefrontGroup, _find_dev_server, settings_command
from app.db.cli import database_group
from app.db.migrate import upgrade
from app.settings import PROJECT_ROOT, get_settings
from tests.conftest import make_settings
from tests.support.cli import said
from tests.support.servers import free_port
from tests.support.shop import wait_for

STOREFRONT = Path(sys.executable).with_name("storefront")
SHOP_COMMANDS = [
    "database",
    "users",
    "pricing",
    "api-keys",
    "webhooks",
    "events",
    "ledger",
    "reconcile",
    "settings",
]
SERVING_COMMANDS = ["serve", "run", "sandbox"]
LITESTAR_COMMANDS = ["info", "routes", "schema", "version"]
BROKEN_PRICING = '[[pack]]\nid = 1\nprice = "free"\n'


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without any shop setting, a var dir of the test's own, and ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STOREFRONT_", "STRIPE_", "LITESTAR_")) and key not in ("PORT", "CI")
    }
    env["STOREFRONT_VAR_DIR"] = str(tmp_path / "var")
    env["STOREFRONT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'shop.db'}"
    env["COLUMNS"] = "100"
    return {**env, **extra}


def storefront(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STOREFRONT), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def broken_pricing(tmp_path: Path) -> Path:
    path = tmp_path / "pricing.toml"
    path.write_text(BROKEN_PRICING, encoding="utf-8")
    return path


def _panel_rows(help_text: str) -> list[tuple[str, str, str]]:
    """(panel, first cell, rest) of every row inside the boxes of rich-click's help."""
    rows = []
    panel = ""
    for line in help_text.splitlines():
        if title := re.match(r"\s*╭─ (.+?) ─", line):
            panel = title.group(1)
        elif line.strip().startswith("│"):
            inner = line.strip().strip("│").rstrip()
            cells = inner.strip().split(None, 1)
            first = cells[0] if inner[:2].strip() else ""  # a continuation line starts with spaces
            rows.append((panel, first, inner))
    return rows


def test_help_lists_the_shops_commands_first_each_on_one_line_while_pricing_is_broken(
    tmp_path: Path, broken_pricing: Path
) -> None:
    result = storefront(clean_env(tmp_path, STOREFRONT_PRICING=str(broken_pricing)), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = [(panel, first) for panel, first, _ in _panel_rows(result.stdout) if panel != "Options"]
    assert all(first for _, first in rows), f"a command's help wraps onto a second line:\n{result.stdout}"
    assert rows == [
        *(("Shop", name) for name in SHOP_COMMANDS),
        *(("Serving", name) for name in SERVING_COMMANDS),
        *(("Litestar", name) for name in LITESTAR_COMMANDS),
    ], result.stdout
    assert "sessions" not in result.stdout  # Litestar's server-side session admin is hidden
    assert result.stdout.index("database") < result.stdout.index("info")


def test_pricing_check_works_while_the_live_catalogue_is_broken(tmp_path: Path, broken_pricing: Path) -> None:
    env = clean_env(tmp_path, STOREFRONT_PRICING=str(broken_pricing))
    bad = storefront(env, "pricing", "check", str(broken_pricing))
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert "problems" in bad.stderr
    assert "unknown key 'pack'" in bad.stderr
    assert "Traceback" not in bad.stderr
    good = storefront(env, "pricing", "check", str(PROJECT_ROOT / "pricing.toml"))
    assert good.returncode == 0, good.stderr
    assert "OK, " in good.stdout
    assert good.stderr == ""


def test_a_command_prints_only_its_output_and_no_log_line_before_it(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    upgrade(make_settings(tmp_path, env["STOREFRONT_DATABASE_URL"].replace("sqlite:", "sqlite+aiosqlite:")))
    made = storefront(env, "api-keys", "create", "billing", "--scopes", "read,spend")
    assert made.returncode == 0, made.stderr
    [key] = made.stdout.splitlines()
    assert re.fullmatch(r"sf_test_[A-Za-z0-9_-]{20,}", key), made.stdout
    # What stderr carries is the one-time notice, never an info log line (catalogue.loaded, ...).
    assert made.stderr.startswith("Created key 1 ("), made.stderr
    assert "[info" not in made.stderr
    assert "catalogue" not in made.stderr


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``storefront run --port P`` as ``make dev`` starts it, on a migrated SQLite of its own."""
    env = clean_env(tmp_path, STOREFRONT_RECONCILE_INTERVAL="0")
    upgrade(make_settings(tmp_path, env["STOREFRONT_DATABASE_URL"].replace("sqlite:", "sqlite+aiosqlite:")))
    port = free_port()
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [str(STOREFRONT), "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def answers() -> bool:
        assert proc.poll() is None, (tmp_path / "run.log").read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=60, interval=0.2)
        yield port, env
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _setting(output: str, name: str) -> str:
    found = re.search(rf"^{re.escape(name)}\s+(.+)$", output, re.M)
    assert found, output
    return found.group(1).strip()


def test_commands_find_the_development_server_on_any_port_without_flags(
    dev_server: tuple[int, dict[str, str]],
) -> None:
    port, env = dev_server
    assert "PORT" not in env
    assert "STOREFRONT_BASE_URL" not in env
    shown = storefront(env, "settings")
    assert shown.returncode == 0, shown.stderr
    assert _setting(shown.stdout, "base URL") == f"http://127.0.0.1:{port}"
    assert _setting(shown.stdout, "stripe API") == f"http://127.0.0.1:{port}/sandbox"
    # reconcile talks to the sandbox mounted in that running shop.
    reconciled = storefront(env, "reconcile", timeout=120)
    assert reconciled.returncode == 0, reconciled.stderr
    assert "listed 0 Stripe event(s)" in reconciled.stdout


@pytest.fixture
def shop_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """This process's environment without shop settings; restored (and settings re-read) afterwards."""
    for key in [k for k in os.environ if k.startswith(("STOREFRONT_", "STRIPE_"))] + ["PORT"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STOREFRONT_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, "http://127.0.0.1:8123"),
        ({"PORT": "9"}, "http://127.0.0.1:9"),
        ({"STOREFRONT_BASE_URL": "http://shop.test:7"}, "http://shop.test:7"),
    ],
)
def test_an_explicit_port_or_base_url_wins_over_the_noted_server(
    shop_env: pytest.MonkeyPatch, tmp_path: Path, given: dict[str, str], expected: str
) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / DEV_SERVER_FILE).write_text("http://127.0.0.1:8123\n")
    for key, value in given.items():
        shop_env.setenv(key, value)
    _find_dev_server()
    assert get_settings().base_url == expected


def test_settings_never_print_secrets(shop_env: pytest.MonkeyPatch) -> None:
    env = {
        "STOREFRONT_DATABASE_URL": "postgresql://shop:hunter2-secret@db.internal:5432/shop",
        "STOREFRONT_REDIS_URL": "redis://:redis-secret@cache:6379/0",
        "STOREFRONT_SECRET_KEY": "k" * 40,
        "STOREFRONT_METRICS_TOKEN": "metrics-secret",
    }
    shown = CliRunner().invoke(settings_command, [], env=env)
    assert shown.exit_code == 0, shown.output
    for secret in ("hunter2-secret", "redis-secret", "k" * 40, "metrics-secret"):
        assert secret not in shown.output
    assert _setting(shown.stdout, "database") == "postgresql+asyncpg://shop:***@db.internal:5432/shop"
    assert _setting(shown.stdout, "metrics token") == "set"


def _group_with(*commands: tuple[str, click.Command]) -> StorefrontGroup:
    group = StorefrontGroup(name="storefront")
    for name, command in commands:
        group.add_command(command, name)
    return group


def test_an_unmigrated_database_is_a_message_not_a_traceback(
    shop_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    group = _group_with(("api-keys", api_keys_group))
    env = {"STOREFRONT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = CliRunner().invoke(group, ["api-keys", "list"], env=env)
    assert result.exit_code == 1
    assert "run `storefront database upgrade --no-prompt` first (no such table: server_key)" in said(result)
    assert "Traceback" not in result.output


def test_settings_production_refuses_are_a_message_not_a_traceback(shop_env: pytest.MonkeyPatch) -> None:
    group = _group_with(("settings", settings_command))
    result = CliRunner().invoke(group, ["settings"], env={"STOREFRONT_ENV": "production"})
    assert result.exit_code == 1
    words = said(result)
    assert words.startswith("Error refusing to start in production: STOREFRONT_SECRET_KEY must be"), words
    assert "STOREFRONT_BASE_URL must be an https:// URL" in words
    assert "Traceback" not in result.output


def test_db_still_answers_for_database(shop_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(_group_with(("database", database_group)), ["db", "--help"])
    assert result.exit_code == 0, result.output
    assert "backup" in result.output
    assert "upgrade" in result.output
