"""``storefront webhooks ...`` through click's CliRunner against a migrated database of each kind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.host_webhooks.cli import webhooks_group
from app.settings import Settings, get_settings
from tests.host_webhooks.receiver import Receiver
from tests.support.shop import run_sql, wait_for

STOREFRONT = str(Path(sys.executable).with_name("storefront"))


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Iterator[CliRunner]:
    get_settings.cache_clear()
    runner = CliRunner(
        env={
            "STOREFRONT_DATABASE_URL": settings.database_url,
            "STOREFRONT_VAR_DIR": str(tmp_path / "cli-var"),
        }
    )
    yield runner
    get_settings.cache_clear()


def invoke(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(webhooks_group, list(args))


def test_add_list_deliver_redeliver_remove(
    cli: CliRunner, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    app, base = receiver
    added = invoke(cli, "add", base + "/hooks", "--events", "balance.credited, balance.low")
    assert added.exit_code == 0, added.output
    endpoint_id = int(re.search(r"endpoint (\d+):", added.output).group(1))  # type: ignore[union-attr]
    secret = re.search(r"secret: (whsec_\S+)", added.output).group(1)  # type: ignore[union-attr]
    assert "not shown again" in added.output
    app.secrets["/hooks"] = secret
    everything = invoke(cli, "add", "https://host.example/hooks", "--events", "*")
    assert everything.exit_code == 0, everything.output

    listed = invoke(cli, "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "id\turl\tevents\tcreated\tdisabled\tpending\tfailed"
    first = lines[1].split("\t")
    assert first[:3] == [str(endpoint_id), base + "/hooks", "balance.credited,balance.low"]
    assert first[4:] == ["-", "0", "0"]
    assert secret not in listed.output
    assert "2 endpoint(s)" in listed.output

    run_sql(
        settings,
        "INSERT INTO host_event (id, type, user_id, payload, created, fanned_out)"
        ' VALUES (\'evt_cli\', \'balance.low\', 1, \'{"id":"evt_cli","type":"balance.low"}\', 1, false)',
    )
    second_id = re.search(r"endpoint (\d+):", everything.output).group(1)  # type: ignore[union-attr]
    once = invoke(cli, "deliver", "--once")
    assert once.exit_code == 0, once.output
    assert "2 attempt(s)" in once.output  # ours and https://host.example's (which failed)
    assert [e["id"] for e in app.verified()] == ["evt_cli"]

    log = invoke(cli, "deliveries", "--endpoint", str(endpoint_id), "--attempts")
    assert log.exit_code == 0, log.output
    row = log.output.splitlines()[1].split("\t")
    assert row[1:7] == ["evt_cli", "balance.low", str(endpoint_id), "delivered", "1", "200"]
    assert "\t200\t" in log.output.splitlines()[2]
    delivery_id = row[0]

    removed = invoke(cli, "remove", second_id)
    assert removed.exit_code == 0, removed.output
    assert "canceled" in invoke(cli, "deliveries", "--endpoint", second_id).output
    disabled = invoke(cli, "list").output.splitlines()[2].split("\t")
    assert disabled[4] != "-"

    again = invoke(cli, "redeliver", delivery_id)
    assert again.exit_code == 0, again.output
    assert "evt_cli" in again.output
    assert "1 attempt(s)" in invoke(cli, "deliver", "--once").output
    assert [e["id"] for e in app.verified()] == ["evt_cli", "evt_cli"]
    relog = invoke(cli, "deliveries", "--status", "delivered", "--attempts").output.splitlines()
    assert relog[1].split("\t")[:5] == [delivery_id, "evt_cli", "balance.low", str(endpoint_id), "delivered"]
    assert [line.split("\t")[1] for line in relog[2:4]] == ["200", "200"]  # both attempts logged

    canceled_id = invoke(cli, "deliveries", "--endpoint", second_id).output.splitlines()[1].split("\t")[0]
    refused = invoke(cli, "redeliver", canceled_id)
    assert refused.exit_code != 0
    assert "was removed" in refused.output

    rotated = invoke(cli, "rotate-secret", str(endpoint_id), "--overlap", "3600")
    assert rotated.exit_code == 0, rotated.output
    new_secret = re.search(r"new secret: (whsec_\S+)", rotated.output).group(1)  # type: ignore[union-attr]
    assert new_secret != secret
    assert "for 3600 s" in rotated.output

    purged = invoke(cli, "remove", second_id, "--purge")
    assert purged.exit_code == 0, purged.output
    assert "1 endpoint(s)" in invoke(cli, "list").output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host.example/hooks", "absolute http:// or https:// URL"),
        ("host.example/hooks", "absolute http:// or https:// URL"),
        ("https:///nohost", "absolute http:// or https:// URL"),
        ("https://host.example/a b", "must not contain spaces"),
        ("https://host.example:99999/", "cannot be read"),
        ("https://host.example/#frag", "#fragment"),
        ("https://host.example/" + "a" * 2000, "longer than 2000"),
    ],
)
def test_a_bad_url_is_refused_with_a_message(
    cli: CliRunner, settings: Settings, url: str, message: str
) -> None:
    result = invoke(cli, "add", url, "--events", "*")
    assert result.exit_code != 0
    assert message in result.output
    assert run_sql(settings, "SELECT id FROM webhook_endpoint") == []


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ("balance.credited,balance.stolen", "unknown event type(s): balance.stolen (known: balance.credited"),
        ("", "name at least one event type"),
        (" , ", "name at least one event type"),
        ("*,balance.low", "give it alone"),
    ],
)
def test_an_unknown_event_type_is_refused_with_a_message(
    cli: CliRunner, settings: Settings, events: str, message: str
) -> None:
    result = invoke(cli, "add", "https://host.example/hooks", "--events", events)
    assert result.exit_code != 0
    assert message in result.output
    assert run_sql(settings, "SELECT id FROM webhook_endpoint") == []


def test_unknown_ids_and_statuses_are_refused(cli: CliRunner) -> None:
    assert "no endpoint 999" in invoke(cli, "remove", "999").output
    assert "no delivery 999" in invoke(cli, "redeliver", "999").output
    assert "no endpoint 999" in invoke(cli, "rotate-secret", "999").output
    bad = invoke(cli, "deliveries", "--status", "lost")
    assert bad.exit_code != 0
    assert "'lost' is not one of" in bad.output
    assert invoke(cli, "deliveries").output.strip().endswith("0 deliveries")


def test_the_standalone_deliverer_delivers_and_stops_on_sigterm(
    sqlite_settings: Settings, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    """``storefront webhooks deliver`` as its own process (the way to run it with the app's off);
    the database does not matter here (SQLite only: the CLI takes seconds to start)."""
    settings = sqlite_settings
    app, base = receiver
    env = {
        **os.environ,
        "STOREFRONT_DATABASE_URL": settings.database_url,
        "STOREFRONT_VAR_DIR": str(tmp_path / "proc-var"),
        "STOREFRONT_HOST_WEBHOOKS_POLL": "0.05",
    }
    added = subprocess.run(
        [STOREFRONT, "webhooks", "add", base + "/hooks", "--events", "*"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    app.secrets["/hooks"] = re.search(r"secret: (whsec_\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    process = subprocess.Popen(
        [STOREFRONT, "webhooks", "deliver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(1.0)  # started and polling before the event exists
        run_sql(
            settings,
            "INSERT INTO host_event (id, type, user_id, payload, created, fanned_out)"
            " VALUES ('evt_proc', 'hold.expired', 1, '{\"id\":\"evt_proc\"}', 1, false)",
        )
        wait_for(lambda: app.verified(), timeout=20, interval=0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert [e["id"] for e in app.verified()] == ["evt_proc"]


def test_purge_deletes_settled_events_older_than_the_days_kept(cli: CliRunner, settings: Settings) -> None:
    run_sql(
        settings,
        "INSERT INTO host_event (id, type, user_id, payload, created, fanned_out)"
        " VALUES ('evt_old', 'balance.credited', NULL, '{}', :old, :t),"
        " ('evt_new', 'balance.credited', NULL, '{}', :new, :t)",
        old=int(time.time()) - 10 * 86400,
        new=int(time.time()),
        t=True,
    )
    kept = invoke(cli, "purge", "--keep-days", "30")
    assert kept.exit_code == 0, kept.output
    assert kept.output.startswith("0 event(s) purged")
    purged = invoke(cli, "purge", "--keep-days", "7")
    assert purged.exit_code == 0, purged.output
    assert purged.output.startswith("1 event(s) purged")
    assert [row["id"] for row in run_sql(settings, "SELECT id FROM host_event")] == ["evt_new"]
    assert invoke(cli, "purge", "--keep-days", "0").exit_code != 0
