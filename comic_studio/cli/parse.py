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
    parse.add_argument(
        "--format",
        default="auto",
        choices=["auto", "prose", "comic", "screenplay"],
        help="the story's form: auto (default: detected from the text), prose, comic (a comic full script: "
        "PAGE/PANEL headings, CAPTION:, NAME: dialogue, SFX:) or screenplay (Fountain or loose screenplay text)",
    )
    parse.add_argument("--context", type=int, help="llama/openai: the model's context size in tokens (default 8192)")
    parse.add_argument(
        "--window-seconds", type=float, help="llama/openai: time limit per story window in seconds (default 180)"
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

        if args.format != "auto":
            from comic_studio.parsing.errors import ParseError

            raise ParseError(
                f"--format {args.format} applies to the rules parser; the LLM parsers read every form themselves",
                "format",
            )
        parser = make_llm_parser(
            args.parser,
            model=args.model,
            base_url=args.base_url,
            context=args.context,
            window_seconds=args.window_seconds,
        )
        parsed, _characters = parse_story_file_with(
            parser,
            Path(args.story),
            characters_path=characters_path,
            progress=window_progress,
        )
        for warning in parsed.warnings:
            show.say(f"warning: {warning}")
    else:
        from comic_studio.parsing.errors import ParseError

        if args.model or args.base_url or args.context is not None or args.window_seconds is not None:
            raise ParseError(
                f"--model, --base-url, --context and --window-seconds apply to the llama and openai parsers, "
                f"not {args.parser!r}"
            )
        if args.parser == "rules":
            from comic_studio.parsing.rules import RuleParser

            engine: Any = RuleParser(args.format)
        elif args.format != "auto":
            raise ParseError(f"--format applies to the rules parser, not {args.parser!r}", "format")
        else:
            engine = args.parser
        parsed, _characters = parse_story_file(Path(args.story), parser=engine, characters_path=characters_path)
        if not args.quiet and parsed.form:
            print(f"read as: {parsed.form}", file=sys.stderr)
    if args.out == "-":
        print(parsed.model_dump_json(indent=2))
    else:
        write_parsed_json(parsed, args.out)
        beats = sum(len(s.beats) for s in parsed.scenes)
        print(f"{args.out}: {len(parsed.scenes)} scenes, {beats} beats", file=sys.stderr)
    return 0
