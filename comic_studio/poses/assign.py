"""Which character plays which figure of a pose entry.

Rules (RaCig's assignment, made deterministic): the acting character takes the ``actor`` figure,
the acted-on character the ``target`` figure, and everyone else fills the remaining figures in
order of mention, left to right. The result is stored in ``CharacterPlacement.figure`` so the user
can swap it in the panel later.
"""

from __future__ import annotations

from collections.abc import Sequence

from comic_studio.poses.library import PoseEntry


def assign_figures(entry: PoseEntry | None, character_ids: Sequence[str], actor_id: str | None = None,
                   target_id: str | None = None) -> list[int]:  # fmt: skip
    """Figure index for each of ``character_ids`` (same order, same length).

    Characters beyond the entry's figure count (a crowd of 5 on a 3-figure pose) get indices
    ``len(entry.figures)``, ``len(entry.figures) + 1``, …: "no figure in this pose", so the renderer
    can leave them out or draw them in the background. With ``entry=None`` (no pose: an empty or
    establishing scene) every character gets such an index, counting from 0.
    """
    if len(set(character_ids)) != len(character_ids):
        raise ValueError(f"character ids must be unique, got {list(character_ids)}")
    n_fig = len(entry.figures) if entry is not None else 0
    result: dict[str, int] = {}
    free = entry.figures_left_to_right() if entry is not None else []

    def take(character: str | None, role: str) -> None:
        if character is None or character not in character_ids or character in result:
            return
        for idx in free:
            if entry is not None and entry.figures[idx].role == role:
                result[character] = idx
                free.remove(idx)
                return

    take(actor_id, "actor")
    take(target_id, "target")
    # Everyone else: order of mention ↔ the remaining figures from left to right.
    extra = n_fig
    for cid in character_ids:
        if cid in result:
            continue
        if free:
            result[cid] = free.pop(0)
        else:
            result[cid] = extra
            extra += 1
    return [result[cid] for cid in character_ids]
