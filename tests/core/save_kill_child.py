"""Child process for test_save_kill.py: saves a big project to argv[1] over and over
(argv[2:5]: pages, panels, assets of the generated project).

Protocol on stdout (one line each, flushed): ``ready``, then per save ``saving N`` and
``saved N SECONDS``. The parent SIGKILLs this process at chosen moments inside a save.
"""

import sys
import time
from pathlib import Path

from comic_studio.core.projectfile import save_project
from comic_studio.core.sample_projects import make_big_project


def main() -> None:
    target = Path(sys.argv[1])
    pages, panels, assets = (int(arg) for arg in sys.argv[2:5])
    project, store = make_big_project(pages=pages, panels=panels, assets=assets)
    print("ready", flush=True)
    for n in range(1_000_000):
        project.title = f"save {n}"
        print(f"saving {n}", flush=True)
        started = time.perf_counter()
        save_project(target, project, store)
        print(f"saved {n} {time.perf_counter() - started:.4f}", flush=True)


if __name__ == "__main__":
    main()
