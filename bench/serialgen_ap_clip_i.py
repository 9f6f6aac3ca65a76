"""AP-CLIP-I with and without standard sheets (SerialGen, issue 19 §4). Prints JSON.

    python bench/serialgen_ap_clip_i.py [--panels 6] [--seed 7] [--out r.json]

A short story (the sample story's first ``--panels`` panels with a character in them; each
character gets one body and one face reference picture) is rendered twice on the tiny kit
(``--models tiny``: random weights) at the panels' own seeds:

* ``racig`` — one stage: each character drawn from its own references;
* ``serialgen`` — two stages: every character is standardized first (the ``kit`` standardizer:
  :func:`comic_studio.workflows.standardize.standardize_character`, seed ``--seed``), then the panels
  are drawn from the standard sheets by the ``serialgen`` backend.

Both renders are scored by :func:`comic_studio.workflows.evaluation.evaluate` (the ``eval``
command's path: masked CLIP-I against the character's references, AP-CLIP-I = mean pairwise masked
CLIP-I of a character's figures across its panels, SerialGen §4.3) with the tiny OpenCLIP model.
``ap_clip_i`` compares a character's panels with each other, so the two runs are comparable;
``clip_i`` is against the character's references *as the project holds them*, and after stage 1 the
sheet is the first of them (that is what standardizing does), so the two ``clip_i`` figures are not
against the same pictures. On random weights these figures check the arithmetic end to end, nothing
about quality: the paper reports AP-CLIP-I 83.17 (two stages) against 77.74 (the paired one-stage model, no standardization)
with its trained models (SerialGen §4.3.1, in the text; its CLIP-I is background-removed, §4.2), i.e.
about +5.4 points is what a user with real weights may expect from standardizing first.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import emit_result  # noqa: E402

PAPER = {"section": "SerialGen §4.3.1", "ap_clip_i_two_stage": 83.17, "ap_clip_i_one_stage": 77.74}


def _story(n_panels: int):
    from comic_studio.core.character_file import load_characters
    from comic_studio.core.resources import resource
    from comic_studio.testing.tiny import character_picture
    from comic_studio.workflows.batch import DEMO_CHARACTERS, DEMO_STORY
    from comic_studio.workflows.story import story_to_document

    doc = story_to_document(
        resource(*DEMO_STORY).read_text(encoding="utf-8"), load_characters(resource(*DEMO_CHARACTERS))
    )
    for seed, character in enumerate(doc.project.characters):
        pictures = []
        for picture in (character_picture(10 + seed, 48, 64), character_picture(20 + seed)):
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            pictures.append(doc.assets.add(buffer.getvalue()))
        character.body_refs, character.face_refs = [pictures[0]], [pictures[1]]
    panels = [p for page in doc.project.pages for p in page.panels_in_order() if p.characters][:n_panels]
    return doc, panels


def _summary(report, backend: str) -> dict:
    rows = {}
    for character in report.characters:
        for row in character.backends:
            if row.backend == backend:
                rows[character.name] = {"panels": row.panels, "ap_clip_i": row.ap_clip_i,
                                        "mean_clip_i": row.mean_clip_i, "note": row.ap_clip_i_note}  # fmt: skip
    (entry,) = [b for b in report.backends if b.backend == backend]
    return {"ap_clip_i": entry.ap_clip_i, "clip_i": entry.clip_i, "render_s": round(entry.render_seconds, 1),
            "failed": entry.failed, "characters": rows}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7, help="the standard sheets' seed")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    from comic_studio.evaluation.scoring import Scorer
    from comic_studio.generation.registry import available_backends
    from comic_studio.poses.openclip_embedder import OpenClipEmbedder
    from comic_studio.testing.tiny import use_tiny_models
    from comic_studio.testing.tiny_eval import tiny_clip_weights
    from comic_studio.workflows.evaluation import evaluate
    from comic_studio.workflows.standardize import standardize_character

    missing = {"racig", "serialgen"} - set(available_backends())
    if missing:
        raise SystemExit(f"backend(s) {', '.join(sorted(missing))} not installed (pip install -e . registers them)")
    out: dict = {"paper": PAPER, "models": "tiny (random weights): arithmetic only"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        use_tiny_models(root / "kit")
        clip = OpenClipEmbedder.load(tiny_clip_weights(root / "models"), model_id="tiny-eval")
        doc, panels = _story(args.panels)
        out["panels"] = len(panels)

        def run(backend: str) -> dict:
            report, _json, _html = evaluate(doc, panels, [backend], Scorer(clip, root / "cache"), root / backend,
                                            project_name="bench", clip_model="tiny-eval", dry=True)  # fmt: skip
            return _summary(report, backend)

        out["racig"] = run("racig")  # before any sheet exists: each character from its own references
        t0 = time.perf_counter()
        for character in doc.project.characters:
            standardize_character(doc, character.id, seed=args.seed)
        out["standardize_s"] = round(time.perf_counter() - t0, 1)
        out["serialgen"] = run("serialgen")
    a, b = out["serialgen"]["ap_clip_i"], out["racig"]["ap_clip_i"]
    out["serialgen_minus_racig"] = None if a is None or b is None else round(a - b, 6)
    emit_result(out, args.out)
    return out


if __name__ == "__main__":
    main()
