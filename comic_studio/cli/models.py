"""``comic-studio models list|locate|download ID|check|pin|unpin``: the model catalogue on this machine.

``pin`` writes what downloads verified (or, with ``--from-hub``, what the Hub states) into the
catalogue pins, so later downloads must match it; ``unpin`` forgets a model's pins after an expected
change upstream.

``register(subparsers)`` adds the ``models`` command to the main CLI parser. (The ``--models tiny``
smoke preset of render, anchor and tryon is :func:`comic_studio.testing.tiny.use_tiny_models`.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from comic_studio.core.errors import ComicStudioError
from comic_studio.generation.backend_api import describe_vram
from comic_studio.generation.models.sdxl import default_sdxl_model
from comic_studio.weights.catalogue import load_catalogue
from comic_studio.weights.locate import Places, locate, locate_all, missing_for
from comic_studio.weights.needs import check_need, to_download


def register(subparsers: Any) -> argparse.ArgumentParser:
    models = subparsers.add_parser("models", help="list, locate and download model weights")
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="the model catalogue and what is installed")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_cmd_list)

    where = sub.add_parser("locate", help="where a model's files are on this machine")
    where.add_argument("id", help="catalogue id (see `models list`)")
    where.set_defaults(func=_cmd_locate)

    get = sub.add_parser("download", help="download a model and what it needs into the models folder")
    get.add_argument("id", help="catalogue id (see `models list`)")
    get.add_argument("--models-folder", help="download here instead of the configured models folder")
    get.add_argument("--quiet", action="store_true", help="no progress on stderr")
    get.set_defaults(func=_cmd_download)

    pin = sub.add_parser(
        "pin", help="record the sha256, size and commit of downloaded files (or, with --from-hub, published ones)"
    )
    pin.add_argument("ids", nargs="*", metavar="ID", help="catalogue ids (default: every model)")
    pin.add_argument("--from-hub", action="store_true", help="ask the server for files not downloaded here")
    pin.add_argument(
        "--write-catalogue",
        metavar="PATH",
        help="write a whole catalogue with the pins to PATH (maintainers: comic_studio/resources/models.json) "
        "instead of the user pins file",
    )
    pin.add_argument("--models-folder", help="the models folder whose download lock to read")
    pin.set_defaults(func=_cmd_pin)

    forget = sub.add_parser("unpin", help="forget a model's pins and download records (after an expected change)")
    forget.add_argument("ids", nargs="+", metavar="ID", help="catalogue ids")
    forget.add_argument("--models-folder", help="the models folder whose download lock to edit")
    forget.set_defaults(func=_cmd_unpin)

    check = sub.add_parser(
        "check", help="what each backend needs, and what is still missing (exit status 1 if anything is)"
    )
    check.add_argument("--backend", help="only this backend (e.g. sdxl, racig); without it, every installed backend")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_cmd_check)
    return models


def _places(args: argparse.Namespace) -> Places:
    places = Places.from_settings()
    folder = getattr(args, "models_folder", None)
    return (
        Places(models=Path(folder).expanduser(), external=places.external, hf_cache=places.hf_cache)
        if folder
        else places
    )


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def _cmd_list(args: argparse.Namespace) -> int:
    import json

    places = _places(args)
    rows = []
    for entry in load_catalogue().models:
        found = locate(entry, places)
        rows.append({"id": entry.id, "kind": entry.kind, "name": entry.name, "size": entry.size,
                     "licence": entry.licence, "installed": found is not None,
                     "pinned": all(f.pinned and (f.url or f.revision) for f in entry.files),
                     "path": str(found.path) if found else None, "source": found.source if found else None})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        state = f"installed ({r['source']})" if r["installed"] else "missing"
        print(f"{r['id']:<{width}}  {r['kind']:<11}  {_size(r['size']):>9}  {state:<26}  {r['name']}")
    return 0


def _cmd_locate(args: argparse.Namespace) -> int:
    places = _places(args)
    entry = load_catalogue().get(args.id)
    found = locate(entry, places)
    if found is None:
        missing = ", ".join(m.id for m in missing_for(entry.id, places))
        print(
            f"{entry.id}: not installed (missing: {missing}); run `comic-studio models download {entry.id}`",
            file=sys.stderr,
        )
        return 1
    print(found.path)
    for need in missing_for(entry.id, places):
        print(f"note: {entry.id} also needs {need.id}, which is not installed", file=sys.stderr)
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from comic_studio.weights.download import DownloadProgress, download_entry

    places = _places(args)
    last = [0.0]

    def show(p: DownloadProgress) -> None:
        now = time.monotonic()
        final = p.total is not None and p.done >= p.total
        if args.quiet or (not final and now - last[0] < 0.5):
            return
        last[0] = now
        pct = f"{100 * p.fraction:5.1f}%" if p.fraction is not None else _size(p.done)
        print(f"{p.model_id} [{p.file_index + 1}/{p.file_count}] {p.file}: {pct}", file=sys.stderr)

    for entry in missing_for(args.id, places):
        download_entry(entry, places.models, progress=show)
    found = locate(load_catalogue().get(args.id), places)
    print(found.path if found else places.models / args.id)
    return 0


def _cmd_pin(args: argparse.Namespace) -> int:
    from comic_studio.core.atomic import atomic_write_text
    from comic_studio.weights.catalogue import apply_pins, bundled_catalogue, catalogue_json, pins_path, read_catalogue
    from comic_studio.weights.pinning import collect_pins, save_user_pins

    places = _places(args)
    target = Path(args.write_catalogue) if args.write_catalogue else None
    catalogue = (read_catalogue(target) if target.exists() else bundled_catalogue()) if target else load_catalogue()
    pins, report = collect_pins(catalogue, list(args.ids), places.models, from_hub=args.from_hub)
    for model_id, path, pin, source in report.pinned:
        at = f" at {pin.revision[:12]}" if pin.revision else ""
        print(f"pinned     {model_id}/{path}: sha256 {pin.sha256[:12]}…, {pin.size} bytes{at} (from the {source})")
    for model_id, path, why in report.left:
        print(f"not pinned {model_id}/{path}: {why}")
    if report.pinned:
        if target:
            written = atomic_write_text(target, catalogue_json(apply_pins(catalogue, pins)), "the model catalogue")
        else:
            written = save_user_pins(pins_path(), pins)
        print(f"{len(report.pinned)} file(s) pinned in {written}", file=sys.stderr)
    unpinned = [x for x in report.left if not x[2].startswith("already")]
    if unpinned:
        print(f"{len(unpinned)} file(s) left unpinned", file=sys.stderr)
    return 1 if unpinned else 0


def _cmd_unpin(args: argparse.Namespace) -> int:
    from comic_studio.weights.catalogue import pins_path
    from comic_studio.weights.pinning import unpin

    places = _places(args)
    catalogue = load_catalogue()
    for model_id in args.ids:
        gone = unpin(catalogue.get(model_id), pins_path(), places.models)
        print(f"{model_id}: {gone} pin(s) and download record(s) forgotten")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    """Each backend's declared ``required_models`` against what is installed; exit 1 if any is missing."""
    import json

    from comic_studio.generation.registry import available_backends

    backends = available_backends()
    if args.backend:
        if args.backend not in backends:
            raise ComicStudioError(
                f"no backend {args.backend!r} is installed (installed: {', '.join(backends) or 'none'})"
            )
        backends = {args.backend: backends[args.backend]}
    catalogue = load_catalogue()
    found = locate_all(_places(args), catalogue)
    preferred = {"sdxl": default_sdxl_model()}  # --models tiny / COMIC_STUDIO_SDXL_MODEL may name a path
    report = []
    for name, cls in backends.items():
        statuses = [check_need(need, catalogue, found, preferred.get(need.kind, "")) for need in cls.required_models]
        report.append({
            "backend": name, "name": cls.display_name or name, "ready": all(s.ready for s in statuses),
            "models": [{"needs": s.need.words, "kind": s.need.kind, "setting": s.need.setting, "installed": s.ready,
                        "id": s.satisfied_by or (s.suggestion.id if s.suggestion else None),
                        "where": s.where or None, "path": s.path or None, "problem": s.problem or None,
                        "download": [m.id for m in s.missing]} for s in statuses],
            "download_bytes": sum(m.size or 0 for m in to_download(statuses)),
            "vram_gb": dict(cls.vram_gb),
        })  # fmt: skip
    missing_any = not all(r["ready"] for r in report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 1 if missing_any else 0
    for r in report:
        lacking = [m for m in r["models"] if not m["installed"]]
        state = ("needs no models" if not r["models"] else "ready" if r["ready"]
                 else f"missing {len(lacking)} of {len(r['models'])} ({_size(r['download_bytes'])} to download)")  # fmt: skip
        print(f"{r['backend']} ({r['name']}): {state}")
        if r["vram_gb"]:
            print(f"  {describe_vram(r['vram_gb'])}")
        for m in r["models"]:
            if m["installed"]:
                print(f"  installed  {m['needs']}: {m['id']} ({m['where']}: {m['path']})")
            elif m["id"] is None:
                print(
                    f"  MISSING    {m['needs']}: the catalogue has no {m['kind']} model; set the backend's {m['setting']!r} setting"
                )
            elif m["problem"]:  # a configured file that would not load
                print(f"  UNUSABLE   {m['needs']}: {m['problem']}")
            else:
                print(f"  MISSING    {m['needs']}: comic-studio models download {m['id']}")
    if missing_any:
        print(
            "Models found in a ComfyUI/A1111 folder count too: set it in Preferences (external models folder).",
            file=sys.stderr,
        )
    return 1 if missing_any else 0
