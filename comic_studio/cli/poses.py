"""``comic-studio poses import|list|search|extract``: the user's pose libraries on the command line.

``register(subparsers)`` adds the ``poses`` command to the main CLI parser. Nothing heavy is imported
until a command runs (MediaPipe only for ``extract`` and photo-folder imports, the embedding models
only for ``search``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    poses = subparsers.add_parser("poses", help="import, list and extract poses for the pose library")
    sub = poses.add_subparsers(dest="poses_command", metavar="ACTION", required=True)

    imp = sub.add_parser("import", help="import a folder of pose photos, or RaCig retrieval data "
                                        "(a JSON index or a folder with json/ + skeleton/)")  # fmt: skip
    imp.add_argument("source", metavar="FOLDER|INDEX.json")
    imp.add_argument("--name", help="library name (default: the folder or index name)")
    imp.add_argument("--quiet", action="store_true", help="do not list skipped items")
    imp.add_argument(
        "--features",
        metavar="FEATURES.npy",
        help="RaCig's stored CLIP image features, row-aligned with the index (e.g. fusion_1character.npy)",
    )
    imp.add_argument(
        "--features-model",
        metavar="ID",
        help="the catalogue id of the model that made them (default: openclip-vit-bigg-14, RaCig's)",
    )
    imp.set_defaults(func=_cmd_import)

    search = sub.add_parser("search", help="the library entries that best match a text (what a panel would retrieve)")
    search.add_argument("text")
    search.add_argument("--figures", type=int, default=1, help="how many people the panel shows (default 1)")
    search.add_argument("-k", type=int, default=5, help="how many entries to list (default 5)")
    search.add_argument("--embedder", choices=["auto", "minilm", "overlap", "openclip"], default="auto")
    search.add_argument(
        "--clip-model",
        metavar="ID|FILE",
        help="openclip: a catalogue id or weights file (default: the pose_clip_model setting)",
    )
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.set_defaults(func=_cmd_search)

    listing = sub.add_parser("list", help="pose entries: the bundled library and the user's")
    listing.add_argument("--user", action="store_true", help="only the user's imported poses")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_cmd_list)

    ext = sub.add_parser("extract", help="take the pose from a reference image (offline detector)")
    ext.add_argument("image")
    ext.add_argument("--out", required=True, help="entry JSON file to write")
    ext.add_argument("--caption", help="caption (default: from the file name)")
    ext.add_argument("--id", help="entry id (default: the file name)")
    ext.set_defaults(func=_cmd_extract)
    return poses


def _cmd_import(args: argparse.Namespace) -> int:
    from comic_studio.poses.importing import import_poses

    features = Path(args.features).expanduser() if args.features else None
    report = import_poses(
        Path(args.source).expanduser(), args.name, features=features, features_model=args.features_model
    )
    if not args.quiet:
        for item, why in report.skipped:
            print(f"skipped {item}: {why}", file=sys.stderr)
        for _item, why in report.segment_notes:
            print(f"note: {why}", file=sys.stderr)
    print(report.summary())
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from comic_studio.poses.user_library import load_all_libraries, load_user_libraries, user_poses_dir

    errors: list[str] = []
    entries = load_user_libraries(errors=errors) if args.user else load_all_libraries(errors=errors)
    for problem in errors:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"id": e.id, "figures": e.n_figures, "caption": e.caption, "tags": list(e.tags)}
                          for e in entries], indent=2, ensure_ascii=False))  # fmt: skip
        return 0
    if not entries and args.user:
        print(
            f"no user poses in {user_poses_dir()} (import some with `comic-studio poses import FOLDER`)",
            file=sys.stderr,
        )
        return 0
    width = max((len(e.id) for e in entries), default=0)
    for e in entries:
        print(f"{e.id:<{width}}  {e.n_figures}  {e.caption}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from comic_studio.poses.retrieval import PoseRetriever
    from comic_studio.poses.user_library import load_all_libraries

    if args.figures < 1 or args.k < 1:
        print("error: --figures and -k must be at least 1", file=sys.stderr)
        return 2
    errors: list[str] = []
    entries = load_all_libraries(errors=errors)
    for problem in errors:
        print(f"warning: {problem}", file=sys.stderr)
    retriever = PoseRetriever(entries, embedder=args.embedder, clip_model=args.clip_model)
    for problem in retriever.picture_problems:
        print(f"warning: {problem}", file=sys.stderr)
    ranked = retriever.search(args.text, args.figures, args.k)
    if args.json:
        print(json.dumps({"embedder": retriever.embedder, "clip_model": retriever.clip_model_id,
                          "results": [{"id": e.id, "score": round(s, 4), "figures": e.n_figures, "caption": e.caption,
                                       "image": e.image} for e, s in ranked]}, indent=2, ensure_ascii=False))  # fmt: skip
        return 0
    model = f" ({retriever.clip_model_id})" if retriever.clip_model_id else ""
    print(f"{retriever.embedder}{model}: {len(ranked)} match(es)", file=sys.stderr)
    width = max((len(e.id) for e, _ in ranked), default=0)
    for e, score in ranked:
        print(f"{score:7.4f}  {e.id:<{width}}  {e.caption}")
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from comic_studio.core.atomic import atomic_write_text
    from comic_studio.poses.extract import pose_entry_from_image
    from comic_studio.poses.importing.photos import caption_for_photo
    from comic_studio.poses.library import entry_to_json

    image = Path(args.image).expanduser()
    caption = args.caption or caption_for_photo(image)
    entry = pose_entry_from_image(image, args.id or image.stem, caption)
    out = Path(args.out).expanduser()
    atomic_write_text(out, json.dumps(entry_to_json(entry), indent=1, ensure_ascii=False) + "\n", "the pose entry")
    fig = entry.figures[0]
    seen = sum(1 for kp in fig.keypoints if kp[2] > 0.5)
    print(f"{out}: 1 figure, {seen}/18 keypoints visible, facing {fig.facing:+.2f}")
    return 0
