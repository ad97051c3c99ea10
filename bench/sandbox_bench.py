"""Load the Stripe sandbox with wrk: Checkout Session creations and retrievals per second.

Starts the sandbox with uvicorn (1 worker) on a free loopback port in a subprocess, then runs wrk
with Lua scripts that POST form-encoded session creations and GET retrievals. Target: >= 800
creations/s on a 2-core machine.

    .venv/bin/python bench/sandbox_bench.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

KEY = "sk_test_bench"
BODY = (
    "mode=payment&success_url=https%3A%2F%2Fshop.example%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D"
    "&cancel_url=https%3A%2F%2Fshop.example%2Fcancel"
    "&line_items[0][quantity]=1&line_items[0][price_data][currency]=eur"
    "&line_items[0][price_data][unit_amount]=1250&line_items[0][price_data][product_data][name]=1000%20coins"
    "&metadata[order_id]=ord_1&client_reference_id=user_1"
)

CREATE_LUA = f"""
wrk.method = "POST"
wrk.body = "{BODY}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer {KEY}"
"""

RETRIEVE_LUA = f"""
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {KEY}"
ids = {{IDS}}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/v1/checkout/sessions/" .. ids[(counter % #ids) + 1])
end
"""

SERVER = """
import sys, uvicorn
from app.sandbox import SandboxConfig, create_sandbox_app
port = int(sys.argv[1])
app = create_sandbox_app(SandboxConfig(public_url=f"http://127.0.0.1:{port}"))
uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False,
            loop="uvloop", http="httptools", lifespan="on")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_wrk(wrk: str, url: str, script: Path, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        assert match, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--target", type=float, default=800.0)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk not found: apt-get install -y wrk")
        return 2
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("sandbox did not start")
                    return 1
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-www-form-urlencoded"}
        ids = [
            httpx.post(base + "/v1/checkout/sessions", content=BODY, headers=headers).json()["id"]
            for _ in range(50)
        ]
        with tempfile.TemporaryDirectory() as tmp:
            create = Path(tmp) / "create.lua"
            create.write_text(CREATE_LUA)
            retrieve = Path(tmp) / "retrieve.lua"
            retrieve.write_text(RETRIEVE_LUA.replace("{IDS}", "{" + ",".join(f'"{i}"' for i in ids) + "}"))
            created = run_wrk(wrk, base + "/v1/checkout/sessions", create, args.duration, args.connections)
            fetched = run_wrk(wrk, base, retrieve, args.duration, args.connections)
    finally:
        proc.terminate()
        proc.wait(10)
    for name, figures in (("create session", created), ("retrieve session", fetched)):
        print(
            f"{name:17s} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
            f"p99 {figures['p99_ms']:6.2f} ms  non-2xx {int(figures['non2xx'])}"
        )
    ok = created["rps"] >= args.target and created["non2xx"] == 0 and fetched["non2xx"] == 0
    print(f"target {args.target:.0f} creations/s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
