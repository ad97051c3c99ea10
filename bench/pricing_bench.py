"""Throughput of the pricing page served the production way, against plain Flask + gunicorn.

1. ``storefront serve --workers 2`` (granian, see app/web/serve.py) on a fresh migrated
   SQLite database (development settings, no debug), warmed up, then
   ``wrk -t2 -c32 -d10s --latency`` on ``/``: once without Accept-Encoding (the raw HTML,
   same bytes as the Flask page) and once with ``Accept-Encoding: gzip`` (what browsers send).
   wrk sends no cookies, so every request is a new visitor and gets a fresh CSRF token.
2. The baseline: the same HTML bytes (our page rendered once) from a minimal Flask view under
   gunicorn with 2 ``gthread`` workers x 8 threads, the standard gunicorn setup for keep-alive
   clients (sync workers close every connection, which would flatter us).

Target: >= 10,000 req/s with p99 <= 10 ms, and >= 2x the baseline per worker.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, ROOT, free_port, shop_env, stop, temp_dir, to_ms, wait_for, wrk

WORKERS = 2
SECONDS = 10


def start_shop(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """``storefront serve``; if the CLI itself cannot start, the same ``serve()`` it calls."""
    cli = [
        str(BIN / "storefront"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
    ]
    direct = [
        sys.executable,
        "-c",
        f"from app.web.serve import serve; serve(host='127.0.0.1', port={port}, workers={WORKERS})",
    ]
    for cmd in (cli, direct):
        print("$", " ".join(cmd), flush=True)
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=shop_env(tmp, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
            return proc
        except RuntimeError as exc:
            stop(proc)
            tail = (
                (proc.stderr.read() if proc.stderr else b"")
                .decode(errors="replace")
                .strip()
                .splitlines()[-3:]
            )
            print(f"! {exc}: {' | '.join(tail)}", flush=True)
    raise RuntimeError("could not start the shop")


FLASK_APP = textwrap.dedent(
    """
    from pathlib import Path
    from flask import Flask, Response

    PAGE = Path(__file__).with_name("page.html").read_bytes()
    app = Flask(__name__)

    @app.get("/")
    def pricing():
        return Response(PAGE, content_type="text/html; charset=utf-8")
    """
)


def start_flask(tmp: Path, port: int, html: bytes) -> subprocess.Popen[bytes]:
    (tmp / "page.html").write_bytes(html)
    (tmp / "flask_page.py").write_text(FLASK_APP)
    cmd = [
        str(BIN / "gunicorn"),
        "--workers", str(WORKERS),
        "--worker-class", "gthread",
        "--threads", "8",
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
        "flask_page:app",
    ]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(f"http://127.0.0.1:{port}/", proc)
    return proc


def measure(name: str, url: str, headers: tuple[str, ...] = ()) -> dict[str, str]:
    wrk(url, seconds=2, headers=headers)  # warm-up
    result = wrk(url, seconds=SECONDS, headers=headers)
    print(f"--- {name}: {result['command']}")
    print(textwrap.indent(result["output"].rstrip(), "    "))
    return result


def main() -> int:
    with temp_dir() as name:
        tmp = Path(name)
        port = free_port()
        shop = start_shop(tmp, port)
        url = f"http://127.0.0.1:{port}/"
        try:
            html = httpx.get(url).content
            gz = httpx.get(url, headers={"Accept-Encoding": "gzip"})
            print(f"page: {len(html)} bytes HTML, {gz.headers.get('content-length')} bytes gzip", flush=True)
            ours = measure("storefront (identity)", url)
            ours_gz = measure("storefront (gzip)", url, ("Accept-Encoding: gzip",))
        finally:
            stop(shop)
        time.sleep(1)
        flask_port = free_port()
        flask = start_flask(tmp, flask_port, html)
        try:
            base = measure("flask + gunicorn gthread", f"http://127.0.0.1:{flask_port}/")
        finally:
            stop(flask)

    def line(label: str, r: dict[str, str]) -> str:
        per_worker = float(r["rps"]) / WORKERS
        errors = f"  [{r['errors']}]" if r["errors"] else ""
        return (
            f"{label:<30} {float(r['rps']):>10,.0f} req/s  ({per_worker:,.0f}/worker)"
            f"  p50 {r['p50']:>8}  p99 {r['p99']:>8}{errors}"
        )

    print()
    print(line("storefront, identity", ours))
    print(line("storefront, gzip", ours_gz))
    print(line("flask+gunicorn, identity", base))
    ratio = float(ours["rps"]) / float(base["rps"])
    print(f"ratio per worker (identity, same bytes): {ratio:.2f}x")
    ok = (
        float(ours["rps"]) >= 10_000
        and to_ms(ours["p99"]) <= 10
        and float(ours_gz["rps"]) >= 10_000
        and to_ms(ours_gz["p99"]) <= 10
        and ratio >= 2
    )
    print("target (>= 10,000 req/s, p99 <= 10 ms, >= 2x baseline):", "MET" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
