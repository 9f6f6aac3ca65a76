"""Lets the plugin's tests use Comic Studio's backend contract (tests/backends/contract.py).

In the Comic Studio repository the contract sits two folders up; an out-of-tree plugin copies
``contract.py`` next to its tests (or points COMIC_STUDIO_CONTRACT_DIR at a checkout)."""

import os
import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
for candidate in (os.environ.get("COMIC_STUDIO_CONTRACT_DIR"), _here.parents[2] / "tests" / "backends"):
    if candidate and (Path(candidate) / "contract.py").is_file():
        sys.path.insert(0, str(candidate))
        break
