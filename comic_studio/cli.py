"""The ``comic-studio`` command.

With no subcommand it opens the desktop window (``comic-studio``, or ``comic-studio FILE.comic`` to
open a project); the window's modules, and PySide6 with them, are imported only then, so the
headless subcommands never load Qt. Subcommands: ``demo``, ``render``, ``parse``, ``info``,
``models`` (cli_models.py), ``poses`` (cli_poses.py), ``tryon`` (cli_tryon.py), ``anchor``
(cli_anchor.py). Progress goes to stderr, results to the files named on the command line; errors
print one clear line and exit non-zero (1 for a problem with the input, 2 for a usage error, 130
when interrupted).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from comic_studio import __version__
from comic_studio.core.errors import ComicStudioError


class StderrProgress:
    """One self-overwriting stderr line per task (plain lines when stderr is not a terminal)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        final = done >= total
        if not final and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        line = f"{label}: {done}/{total}"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> int:
    from comic_studio.workflows.batch import run_demo

    out = Path(args.out)
    report = run_demo(out, backend=args.backend, progress=StderrProgress(args.quiet))
    for label, path in report.items():
        print(f"{label}: {path}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from comic_studio.workflows.batch import render_input

    if args.models == "tiny":
        from comic_studio.cli_models import use_tiny_models

        use_tiny_models()
    written = render_input(
        Path(args.input),
        Path(args.out),
        backend=args.backend,
        characters_file=Path(args.characters) if args.characters else None,
        parser=args.parser,
        preset=args.preset,
        dpi=args.dpi,
        trim_marks=args.trim_marks,
        rerender=args.rerender,
        save_project_to=Path(args.save) if args.save else None,
        progress=StderrProgress(args.quiet),
    )
    print(written)
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from comic_studio.parsing import parse_story_file, write_parsed_json

    characters_path = Path(args.characters) if args.characters else None
    if args.parser in ("llama", "openai"):
        from comic_studio.parsing.llm.files import make_llm_parser, parse_story_file_with

        show = StderrProgress(args.quiet)

        def window_progress(fraction: float) -> None:
            # LLM parsers report WindowProgress (a float with window/windows/beats attributes).
            window, windows = getattr(fraction, "window", 0), getattr(fraction, "windows", 0)
            if windows:
                show(f"parsing ({getattr(fraction, 'beats', 0)} beats) window", window if fraction >= window / windows else window - 1, windows)

        parsed, _characters = parse_story_file_with(
            make_llm_parser(args.parser, model=args.model, base_url=args.base_url),
            Path(args.story),
            characters_path=characters_path,
            progress=window_progress,
        )
        for warning in parsed.warnings:
            show.say(f"warning: {warning}")
    else:
        if args.model or args.base_url:
            from comic_studio.parsing.errors import ParseError

            raise ParseError(f"--model and --base-url apply to the llama and openai parsers, not {args.parser!r}")
        parsed, _characters = parse_story_file(Path(args.story), parser=args.parser, characters_path=characters_path)
    if args.out == "-":
        print(parsed.model_dump_json(indent=2))
    else:
        write_parsed_json(parsed, args.out)
        beats = sum(len(s.beats) for s in parsed.scenes)
        print(f"{args.out}: {len(parsed.scenes)} scenes, {beats} beats", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from comic_studio.core.projectfile import load_project

    project, _assets = load_project(Path(args.file))
    panels = sum(len(p.panels) for p in project.pages)
    info = {
        "file": str(args.file),
        "title": project.title,
        "schema_version": project.schema_version,
        "pages": len(project.pages),
        "panels": panels,
        "characters": [c.name for c in project.characters],
        "beats": len(project.story.beats()),
        "page_format": project.page_format.preset,
        "reading_direction": project.reading_direction.value,
    }
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        for key, value in info.items():
            if isinstance(value, list):
                value = ", ".join(value) or "-"
            print(f"{key:>18}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comic-studio", description="Author comics: story → beats → pages → PDF/CBZ/PNG.",
                                     epilog="Without a COMMAND, opens the desktop window: comic-studio [FILE.comic]")
    parser.add_argument("--version", action="version", version=f"comic-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="render the bundled sample story to .comic, PDF, CBZ and PNGs")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--backend", default="storyboard", help="generation backend (default: storyboard)")
    demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    demo.set_defaults(func=_cmd_demo)

    render = sub.add_parser("render", help="render a .comic project or a story text file")
    render.add_argument("input", help="a .comic project or a story .txt/.md file")
    render.add_argument("--out", required=True, help="PATH.pdf, PATH.cbz, or a folder for PNG pages")
    render.add_argument("--backend", default=None, help="backend for the panels it renders (default: each panel's own)")
    render.add_argument("--all", dest="rerender", action="store_true",
                        help="render every panel, not only those without an image (earlier images stay in the history)")
    render.add_argument("--characters", help="character library JSON (for a story file)")
    render.add_argument("--parser", default="rules", help="story parser (default: rules)")
    render.add_argument("--preset", default="us-comic", help="page preset for a story file (default: us-comic)")
    render.add_argument("--dpi", type=int, default=None, help="output resolution (default: the project's)")
    render.add_argument("--trim-marks", action="store_true", help="PDF: add crop marks outside the bleed")
    render.add_argument("--save", help="also save the built project to this .comic file")
    render.add_argument("--models", choices=["tiny"], help="tiny: random-weight tiny SDXL models built locally "
                                                          "(a smoke run of the whole diffusion path, no downloads)")
    render.add_argument("--quiet", action="store_true")
    render.set_defaults(func=_cmd_render)

    parse = sub.add_parser("parse", help="split a story into scenes and beats (JSON)")
    parse.add_argument("story", help="story text file")
    parse.add_argument("--parser", default="rules", help="rules (default), llama (local GGUF) or openai (OpenAI-compatible server)")
    parse.add_argument("--model", help="llama: a .gguf file or catalogue id ($COMIC_STUDIO_LLAMA_MODEL); "
                                       "openai: the server's model name ($COMIC_STUDIO_OPENAI_MODEL, default: its first)")
    parse.add_argument("--base-url", help="openai: server URL, e.g. http://127.0.0.1:11434/v1 ($COMIC_STUDIO_OPENAI_BASE_URL); "
                                          "an API key is read from $COMIC_STUDIO_OPENAI_API_KEY only")
    parse.add_argument("--characters", help="character library JSON")
    parse.add_argument("--out", default="-", help="output JSON file (default: stdout)")
    parse.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parse.set_defaults(func=_cmd_parse)

    from comic_studio.cli_models import register as register_models

    register_models(sub)

    from comic_studio.cli_poses import register as register_poses

    register_poses(sub)

    from comic_studio.cli_tryon import register as register_tryon

    register_tryon(sub)

    from comic_studio.cli_anchor import register as register_anchor

    register_anchor(sub)

    info = sub.add_parser("info", help="summarise a .comic project")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_cmd_info)
    return parser


def _open_window(paths: list[str]) -> int:
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() != ".comic":
            print(f"comic-studio: error: {raw}: not a .comic project (commands: {', '.join(_COMMANDS)})", file=sys.stderr)
            return 2
    try:
        from comic_studio.ui.app import run_app
    except ImportError as exc:
        print(f"comic-studio: error: the desktop window needs PySide6 ({exc}); the commands {', '.join(_COMMANDS)} work without it",
              file=sys.stderr)
        return 1
    return run_app(paths)


_COMMANDS = ("demo", "render", "parse", "info", "models", "poses", "tryon", "anchor")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # No subcommand (or a project path where a subcommand would be) opens the window.
    if not argv or (argv[0] not in _COMMANDS and not argv[0].startswith("-")):
        return _open_window(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except ComicStudioError as exc:
        print(f"comic-studio: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("comic-studio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
