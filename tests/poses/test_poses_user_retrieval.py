"""Imported user poses take part in retrieval for the backends, without a restart."""

from comic_studio.generation.registry import get_backend
from comic_studio.generation.request import GenerationRequest, RequestCharacter
from comic_studio.poses.library import PoseEntry, dump_library, load_library
from comic_studio.poses.retrieval import shared_retriever

CAPTION = "a juggler balances on a unicycle while juggling flaming torches"


def test_an_imported_pose_is_retrieved_by_the_storyboard(tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_POSES_DIR", str(tmp_path))
    before = shared_retriever("overlap")
    template = next(e for e in load_library() if e.n_figures == 1)
    mine = PoseEntry(
        id="juggler", caption=CAPTION, tags=("juggle", "unicycle"), figures=template.figures, aspect=template.aspect
    )
    (tmp_path / "circus.json").write_text(dump_library([mine]), encoding="utf-8")

    after = shared_retriever("overlap")
    assert after is not before  # the library changed: rebuilt
    assert shared_retriever("overlap") is after  # unchanged: reused
    request = GenerationRequest(
        width=96,
        height=96,
        seed=3,
        action="Mara juggles flaming torches on her unicycle",
        characters=[RequestCharacter(id="mara", name="Mara")],
        backend_settings={"pose_matching": "overlap"},
    )
    result = get_backend("storyboard").generate(request)
    assert result.pose_id == "user:juggler"
