"""Total transfer of the pricing page with gzip: HTML + every stylesheet and script it links.

Runs the app in-process (TestClient) on a fresh SQLite database; sizes are the bytes on the
wire (Content-Length of the gzip responses), response headers excluded.  Budget: 30 KB.
"""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import temp_dir

BUDGET = 30 * 1024


def main() -> int:
    from litestar.testing import TestClient

    from app.db.migrate import upgrade
    from app.settings import Settings
    from app.web.factory import create_app

    with temp_dir() as name:
        tmp = Path(name)
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp / 'weight.db'}",
            secret_key=secrets.token_urlsafe(32),
            var_dir=tmp / "var",
            stripe_api_base="http://127.0.0.1:9",
            reconcile_interval_seconds=0,
        )
        upgrade(settings)
        with TestClient(create_app(settings)) as client:
            gz = {"Accept-Encoding": "gzip"}
            page = client.get("/", headers=gz)
            rows = [("/", len(page.content), int(page.headers["content-length"]))]
            for path in re.findall(r'<(?:link[^>]+href|script[^>]+src)="(/static/[^"]+)"', page.text):
                asset = client.get(path, headers=gz)
                rows.append((path, len(asset.content), int(asset.headers["content-length"])))
    total = sum(wire for _, _, wire in rows)
    for path, raw, wire in rows:
        print(f"{path:<36} {raw:>8,} bytes raw  {wire:>8,} bytes gzip")
    print(f"{'total':<36} {sum(r for _, r, _ in rows):>8,} bytes raw  {total:>8,} bytes gzip")
    print(f"budget {BUDGET:,} bytes:", "MET" if total <= BUDGET else "NOT MET")
    return 0 if total <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
