"""How long the first ``import torch`` on a worker thread stops every other thread (the GUI).

Each trial is a fresh interpreter: a worker thread imports torch while the main thread wakes every
10 ms and records how late it is. ``preload`` maps torch's libraries first with the interpreter lock
released (``core.native_libs``, what the app does); ``plain`` imports torch the usual way. Trials
alternate between the two, so machine load hits both alike. Prints JSON:

    {"trials": 5, "plain_worst_ms": [...], "preload_worst_ms": [...], "median_plain_ms": ...,
     "median_preload_ms": ..., "ratio": ..., "load_average": ...}

Usage: python bench/torch_import_stall.py [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

TRIAL = r"""
import json, sys, threading, time
mode = sys.argv[1]
done = threading.Event()

def work():
    if mode == "preload":
        from comic_studio.core.native_libs import preload_extension_modules
        preload_extension_modules("torch")
    import torch  # noqa: F401
    done.set()

lateness = []
thread = threading.Thread(target=work)
last = time.perf_counter()
thread.start()
while not done.is_set():
    time.sleep(0.01)
    now = time.perf_counter()
    lateness.append((now - last - 0.01) * 1000)
    last = now
thread.join()
print(json.dumps({"worst_ms": max(lateness), "ticks": len(lateness)}))
"""


def trial(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", TRIAL, mode], capture_output=True, text=True, check=True, timeout=600)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["worst_ms"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)
    plain: list[float] = []
    preload: list[float] = []
    for _ in range(args.trials):
        plain.append(round(trial("plain"), 1))
        preload.append(round(trial("preload"), 1))
    report = {
        "trials": args.trials,
        "plain_worst_ms": plain,
        "preload_worst_ms": preload,
        "median_plain_ms": statistics.median(plain),
        "median_preload_ms": statistics.median(preload),
        "ratio": round(statistics.median(preload) / statistics.median(plain), 3),
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
