"""Run every bench script in this folder (ours and other features'), one after another.

Scripts are ``bench/*.py`` except this one and helpers starting with ``_``; each runs in
its own process so one failing does not stop the rest.  Exits 1 if any failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(
        p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_")
    )
    failed = []
    for script in scripts:
        print(f"\n===== {script.name} =====", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False).returncode
        print(f"===== {script.name}: exit {code} in {time.monotonic() - started:.1f}s =====", flush=True)
        if code:
            failed.append(script.name)
    print("\nfailed:", ", ".join(failed) if failed else "none")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
