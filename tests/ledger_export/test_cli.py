"""``storefront ledger export`` and ``storefront ledger verify`` through click's runner."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.db.sql import run
from app.ledger_export.cli import ledger_group
from app.ledger_export.service import verify
from app.money.adjustments import adjust
from app.settings import PROJECT_ROOT, Settings, get_settings
from tests.webhooks.factories import make_user, session_factory


def test_export_then_verify_then_a_tampered_file_fails(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def seed() -> None:
        async with session_factory(sqlite_settings) as sessions, sessions() as db, db.begin():
            user = await make_user(db)
            for n in range(3):
                await run(db, adjust, user_id=user.id, asset="coins", units=5, reason=f"r{n}", key=f"k{n}")

    asyncio.run(seed())
    monkeypatch.setenv("STOREFRONT_DATABASE_URL", sqlite_settings.database_url)
    get_settings.cache_clear()
    try:
        exported = CliRunner().invoke(ledger_group, ["export", "--since", "2000-01-01"])
        assert exported.exit_code == 0, exported.output
        file = tmp_path / "ledger.csv"
        file.write_bytes(exported.stdout_bytes)
        verified = CliRunner().invoke(ledger_group, ["verify", str(file)])
        assert verified.exit_code == 0, verified.output
        assert "intact, 3 entries" in verified.output

        last = exported.stderr.rsplit("last hash ", 1)[1].strip()
        file.write_bytes(exported.stdout_bytes.rsplit(b"\r\n", 2)[0] + b"\r\n")  # the last row cut off
        assert CliRunner().invoke(ledger_group, ["verify", str(file)]).exit_code == 0
        cut = CliRunner().invoke(ledger_group, ["verify", str(file), "--last-hash", last])
        assert cut.exit_code == 1
        assert "rows were cut off, added or rehashed" in cut.output

        file.write_bytes(exported.stdout_bytes.replace(b",r1,", b",r9,"))
        tampered = CliRunner().invoke(ledger_group, ["verify", str(file)])
        assert tampered.exit_code == 1
        assert "NOT intact: row 2 (entry 2) differs" in tampered.output
        assert "the 1 rows before it are intact" in tampered.output

        later = CliRunner().invoke(ledger_group, ["export", "--since", "2999-01-01"])
        assert later.exit_code == 0
        assert later.stdout.count("\n") == 1  # the header alone
        assert f"exported 0 entries, last hash {'0' * 64}" in later.stderr
    finally:
        get_settings.cache_clear()


def test_the_storefront_command_writes_only_the_csv_to_stdout(sqlite_settings: Settings) -> None:
    """Log lines (the app is made before any command runs) go to stderr, never into the file."""

    async def seed() -> None:
        async with session_factory(sqlite_settings) as sessions, sessions() as db, db.begin():
            user = await make_user(db)
            await run(db, adjust, user_id=user.id, asset="coins", units=5, reason="r", key="k")

    asyncio.run(seed())
    env = {
        **os.environ,
        "STOREFRONT_DATABASE_URL": sqlite_settings.database_url,
        "STOREFRONT_VAR_DIR": str(sqlite_settings.var_dir),
        "STOREFRONT_LOG_LEVEL": "DEBUG",
    }
    done = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "ledger", "export"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr
    verdict = verify(io.StringIO(done.stdout, newline=""))
    assert verdict.intact, (verdict, done.stdout[:300])
    assert verdict.rows == 1
    assert f"exported 1 entries, last hash {verdict.last_hash}" in done.stderr
