"""Child process for the killed-save tests: saves a generated project to argv[1] once, completely
(``saved``), then starts a second save and stops inside it, in the middle of writing the archive's
assets (``inside``), until it is killed. With a second argument ``recovery`` both writes are the
recovery file of that project opened from argv[1] (into $COMIC_STUDIO_STATE_DIR), as the autosave
writes it. Stopping at a known point, not after a guessed delay, makes the kill land mid-write on
any machine."""

import sys
from pathlib import Path

from comic_studio.core.autosave import write_recovery
from comic_studio.core.projectfile import save_project
from comic_studio.core.sample_projects import make_big_project


def main() -> None:
    target = Path(sys.argv[1])
    recovery = sys.argv[2:] == ["recovery"]
    project, store = make_big_project(pages=20, panels=100, assets=50)

    def write() -> None:
        if recovery:
            write_recovery(project, store, target)
        else:
            save_project(target, project, store)

    write()
    print("saved", flush=True)
    read_asset, last = store.get, max(project.asset_refs())

    def stall_on_the_last_asset(digest: str) -> bytes:
        if digest == last:
            print("inside", flush=True)
            sys.stdin.readline()  # the parent never answers: it kills us here
        return read_asset(digest)

    store.get = stall_on_the_last_asset  # the save reads every asset through the store
    project.title = "never finished"
    write()


if __name__ == "__main__":
    main()
