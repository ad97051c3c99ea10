"""Helpers shared by the bench scripts: free ports, a throwaway shop environment, wrk parsing."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK = shutil.which("wrk") or "/usr/bin/wrk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """This process's environment without the shop's settings, for a server the bench starts.

    Without ``PYTHONDONTWRITEBYTECODE`` too (some machines set it): a server runs from compiled
    bytecode as in production. With it, the money writer's child process (spawned at start-up)
    compiled every module from source while the first requests waited (p99 ~1 s here).
    """
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STOREFRONT_", "STRIPE_")) and k != "PYTHONDONTWRITEBYTECODE"
    }


def shop_env(tmp: Path, port: int) -> dict[str, str]:
    """Development settings (never debug) on a fresh SQLite database; the sandbox is not mounted."""
    env = base_env()
    env.update(
        STOREFRONT_ENV="development",
        STOREFRONT_VAR_DIR=str(tmp / "var"),
        STOREFRONT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        STOREFRONT_SECRET_KEY=secrets.token_urlsafe(32),
        STOREFRONT_STRIPE_API_BASE="http://127.0.0.1:9",
        STOREFRONT_RECONCILE_INTERVAL="0",
        STOREFRONT_BASE_URL=f"http://127.0.0.1:{port}",
        PORT=str(port),
    )
    return env


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(
    url: str, *, seconds: int = 10, connections: int = 32, headers: tuple[str, ...] = ()
) -> dict[str, str]:
    """Run wrk with --latency; return its output plus req/s, p50 and p99 parsed from it."""
    args = [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    found = {
        "rps": re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M),
        "p50": re.search(r"^\s+50%\s+(\S+)", out, re.M),
        "p99": re.search(r"^\s+99%\s+(\S+)", out, re.M),
    }
    result = {key: (m.group(1) if m else "?") for key, m in found.items()}
    result["errors"] = "; ".join(
        line.strip() for line in out.splitlines() if line.strip().startswith(("Non-2xx", "Socket errors"))
    )
    result["output"] = out
    result["command"] = " ".join([*args, url])
    return result


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="storefront-bench-")


def to_ms(value: str) -> float:
    """wrk latency ("812.00us", "1.25ms", "1.02s") in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid`` and its descendants (Linux ``/proc``).

    Throughput moves with whatever else shares the two cores; CPU time per request moves much
    less, so the benches print it beside their rates. 0.0 where ``/proc`` is not there.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    family, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(used.get(member, 0.0) for member in family)


def uvicorn_command(port: int, workers: int) -> list[str]:
    """The production way of serving ``app.asgi:app`` on loopback (uvloop, httptools, no access log)."""
    return [
        str(BIN / "uvicorn"),
        "app.asgi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-server-header",
    ]
