"""``comic-studio parse STORY``: a story split into scenes and beats, as JSON (rules or an LLM parser)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from comic_studio.cli.progress import StderrProgress


def register(subparsers: Any) -> argparse.ArgumentParser:
    parse = subparsers.add_parser("parse", help="split a story into scenes and beats (JSON)")
    parse.add_argument("story", help="story text file")
    parse.add_argument(
        "--parser", default="rules", help="rules (default), llama (local GGUF) or openai (OpenAI-compatible server)"
    )
    parse.add_argument(
        "--model",
        help="llama: a .gguf file or catalogue id ($COMIC_STUDIO_LLAMA_MODEL); "
        "openai: the server's model name ($COMIC_STUDIO_OPENAI_MODEL, default: its first)",
    )
    parse.add_argument(
        "--base-url",
        help="openai: server URL, e.g. http://127.0.0.1:11434/v1 ($COMIC_STUDIO_OPENAI_BASE_URL); "
        "an API key is read from $COMIC_STUDIO_OPENAI_API_KEY only",
    )
    parse.add_argument("--characters", help="character library JSON")
    parse.add_argument("--out", default="-", help="output JSON file (default: stdout)")
    parse.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parse.set_defaults(func=_cmd_parse)
    return parse


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
                show(
                    f"parsing ({getattr(fraction, 'beats', 0)} beats) window",
                    window if fraction >= window / windows else window - 1,
                    windows,
                )

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
