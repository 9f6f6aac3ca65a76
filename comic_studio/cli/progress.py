"""Progress on stderr for the commands (results go to stdout or the files named on the command line)."""

from __future__ import annotations

import sys
import time


class StderrProgress:
    """One self-overwriting stderr line per task (plain lines when stderr is not a terminal)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        final = done >= total
        if not final and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        line = f"{label}: {done}/{total}"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr)
