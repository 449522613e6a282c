"""One process that opens a registry when told to: ``registry_worker.py URL BARRIER_DIR``.

It imports everything first, writes ``BARRIER_DIR/ready-<pid>``, waits for ``BARRIER_DIR/go`` and
only then opens the registry, so that several workers migrate a fresh database at the same moment.
It prints ``{"version": <schema version it sees>}`` and exits 0, or prints the error and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from featurestore.registry import Registry


def main() -> int:
    url, barrier = sys.argv[1], Path(sys.argv[2])
    (barrier / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            print("no go signal within 120 s", file=sys.stderr)
            return 2
        time.sleep(0.005)
    try:
        registry = Registry(url)
    except Exception as exc:  # noqa: BLE001 - the test reads the error from stderr
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"version": registry.schema_version()}))
    registry.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
