"""``comic-studio eval PROJECT --backends a,b,c --out DIR``: render the chosen panels with each method
at the panels' seeds, measure them as the seed papers do (CLIP-T, masked CLIP-I, AP-CLIP-I, pose
accuracy) and write ``DIR/report.json`` + ``DIR/report.html``; a short table goes to stdout."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from comic_studio.cli.options import add_allow_pickle_option
from comic_studio.cli.progress import StderrProgress


def register(subparsers: Any) -> argparse.ArgumentParser:
    ev = subparsers.add_parser("eval", help="compare backends on a project's panels (CLIP-T, CLIP-I, AP-CLIP-I, pose)")
    ev.add_argument("project", help="a .comic project")
    ev.add_argument("--backends", required=True, help="comma-separated backends to compare, e.g. storyboard,sdxl,racig")
    ev.add_argument("--panels", help="panel ids, PAGE.PANEL or PAGE, comma-separated (default: every panel)")
    ev.add_argument("--out", required=True, help="folder for report.json, report.html and the renders")
    ev.add_argument("--dry", action="store_true", help="leave the project file unchanged (renders go to --out only)")
    ev.add_argument("--clip-model", help="OpenCLIP catalogue id or weights file (default: the pose_clip_model "
                    "setting, openclip-vit-h-14)")  # fmt: skip
    ev.add_argument("--segmentation", default="auto",
                    help="whiten the background by the person segmenter inside each figure's region (auto) "
                    "or by the region alone (none)")  # fmt: skip
    ev.add_argument("--pose-detector", default="auto",
                    help="pose accuracy: auto (MediaPipe when installed), mediapipe, openpose-drawing or none")  # fmt: skip
    ev.add_argument("--face-encoder", default="auto",
                    help="face similarity: auto (the face-recognition ViT identity training uses, when installed), "
                    "none, or a ViT folder")  # fmt: skip
    ev.add_argument("--models", choices=["tiny"],
                    help="tiny: random-weight tiny SDXL and OpenCLIP models built locally (a smoke run, no downloads)")  # fmt: skip
    ev.add_argument("--quiet", action="store_true")
    add_allow_pickle_option(ev)
    ev.set_defaults(func=_cmd_eval)
    return ev


def _cmd_eval(args: argparse.Namespace) -> int:
    from comic_studio.core.document import Document
    from comic_studio.evaluation.scoring import Scorer, ScoringOptions
    from comic_studio.poses.openclip_embedder import load_clip_model
    from comic_studio.poses.retrieval import default_cache_dir
    from comic_studio.workflows.evaluation import evaluate, parse_backends, select_panels

    progress = StderrProgress(args.quiet)
    clip_model = args.clip_model
    if args.models == "tiny":
        from comic_studio.testing.tiny import use_tiny_models
        from comic_studio.testing.tiny_eval import tiny_clip_weights

        use_tiny_models()
        clip_model = clip_model or str(tiny_clip_weights())
    path = Path(args.project)
    doc = Document.open(path)
    backends = parse_backends(args.backends)
    panels = select_panels(doc.project, args.panels)
    embedder = load_clip_model(clip_model)
    face, face_note = (None, "off (--face-encoder none)")
    if args.face_encoder != "none":
        from comic_studio.evaluation.faces import load_face_similarity

        face, face_note = load_face_similarity("" if args.face_encoder == "auto" else args.face_encoder)
    scorer = Scorer(embedder, default_cache_dir(), ScoringOptions(args.segmentation, args.pose_detector), face)
    report, json_path, html_path = evaluate(
        doc, panels, backends, scorer, Path(args.out), project_name=path.stem,
        clip_model=embedder.model_id, dry=args.dry, progress=progress, face_note=face_note,
    )  # fmt: skip
    if not args.dry:
        doc.save(path)
    print(format_table(report))
    print(f"face similarity: {face_note}")
    print(json_path)
    print(html_path)
    return 0


def format_table(report: Any) -> str:
    """One row per backend: the mean metrics and the render time per panel."""

    def f(v: float | None, d: int = 3) -> str:
        return "-" if v is None else f"{v:.{d}f}"

    head = (f"{'backend':<16}{'panels':>7}{'CLIP-T':>8}{'CLIP-I':>8}{'AP-CLIP-I':>10}{'face':>7}{'AKD':>8}"
            f"{'fail':>6}{'s/panel':>9}")  # fmt: skip
    rows = [head]
    for b in report.backends:
        per = b.render_seconds / b.panels if b.panels else None
        rows.append(f"{b.backend:<16}{b.panels:>7}{f(b.clip_t):>8}{f(b.clip_i):>8}{f(b.ap_clip_i):>10}{f(b.face_similarity):>7}"
                    f"{f(b.akd):>8}{f(b.pose_fail_rate, 2):>6}{f(per, 2):>9}")  # fmt: skip
    return "\n".join(rows)
