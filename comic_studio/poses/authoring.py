"""Every pose library entry, defined through the parametric skeleton, and the library file writer.

Run ``python -m comic_studio.poses.authoring`` to regenerate ``comic_studio/resources/poses/library.json``
(deterministic: the same code writes the same bytes; a test checks the file is up to date).
The entries themselves live in :mod:`.entries_solo`, :mod:`.entries_pairs`, :mod:`.entries_trios` and
:mod:`.entries_quads`.

Coverage: every action in :data:`ACTIONS` exists for 1, 2 and 3 people except the combinations in
:data:`NONSENSICAL` (an action that needs a partner cannot be done alone); four-person entries cover
the group scenes comics need most rather than every action. Most entries are also
stored mirrored (suffix ``-m``) so retrieval can vary which side the actor stands on.
"""

from __future__ import annotations

import sys
from pathlib import Path

from comic_studio.core.atomic import atomic_write_text
from comic_studio.poses.entries_pairs import add_pair_entries
from comic_studio.poses.entries_quads import add_quad_entries
from comic_studio.poses.entries_solo import add_solo_entries
from comic_studio.poses.entries_trios import add_trio_entries
from comic_studio.poses.library import PoseEntry, default_library_path, dump_library
from comic_studio.poses.stage import EntryBook

ACTIONS: tuple[str, ...] = (
    "stand", "walk", "run", "sit", "kneel", "lie", "jump", "fall", "point", "wave", "talk", "think",
    "cry", "laugh", "punch", "kick", "block", "grab-arm", "pull-hand", "hug", "kiss", "hold-hands",
    "carry", "fight-stance", "weapon", "read", "eat", "sleep",
)  # fmt: skip
NONSENSICAL: frozenset[tuple[str, int]] = frozenset({("hold-hands", 1), ("pull-hand", 1)})
"""(action, people) pairs deliberately absent: holding hands and pulling someone by the hand need a
second person. (A solo "hug" is hugging oneself, a solo "kiss" is blowing a kiss, a solo "grab an
arm" is clutching one's own arm, and a 3-person "kiss" is a couple kissing while a friend watches.)"""


def build_entries() -> list[PoseEntry]:
    """All library entries, in a fixed order."""
    book = EntryBook()
    for section in (add_solo_entries, add_pair_entries, add_trio_entries, add_quad_entries):
        section(book)
    return book.entries


def write_library(path: Path | None = None) -> Path:
    path = Path(path) if path is not None else default_library_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, dump_library(build_entries()), "the built-in pose library")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = write_library(Path(argv[0]) if argv else None)
    print(f"wrote {len(build_entries())} pose entries to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
