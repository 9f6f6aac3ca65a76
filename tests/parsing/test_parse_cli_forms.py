"""``comic-studio parse`` and story forms: --format, the form it read, a script's speakers as the
library when none is given, and options that belong to other parsers refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comic_studio.cli import main

SCRIPT = "PAGE 1\n\nPANEL 1\nMara waits.\nMARA: Late.\n\nPANEL 2\nTOM (OFF): Coming!\nSFX: THUD\n"
SCREENPLAY = "INT. SHED - NIGHT\n\nMara sweeps.\n\nMARA\n(whispering)\nWho is it?\n\nTOM (O.S.)\nMe.\n"


def _run(tmp_path: Path, text: str, *extra: str) -> dict:
    story = tmp_path / "story.txt"
    story.write_text(text, "utf-8")
    out = tmp_path / "out.json"
    assert main(["parse", str(story), "--out", str(out), *extra]) == 0
    return json.loads(out.read_text("utf-8"))


def test_a_comic_script_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _run(tmp_path, SCRIPT)
    assert "read as: comic" in capsys.readouterr().err
    assert data["form"] == "comic"
    beats = [b for s in data["scenes"] for b in s["beats"]]
    assert [b["page"] for b in beats] == [1, 1] and beats[1]["sfx"] == ["THUD"]
    # No library given: the speakers became characters (ids c-…), not left as suggestions.
    assert data["suggestions"] == []
    assert beats[0]["dialogue"][0]["speaker_id"] == "c-mara"
    assert beats[1]["dialogue"][0] == {"speaker_id": "c-tom", "text": "Coming!", "kind": "speech", "off_panel": True}


def test_format_chooses_the_form(tmp_path: Path) -> None:
    assert _run(tmp_path, SCREENPLAY, "--quiet")["form"] == "screenplay"
    as_prose = _run(tmp_path, SCRIPT, "--format", "prose", "--quiet")
    assert as_prose["form"] == "prose" and all(b["page"] == 0 for s in as_prose["scenes"] for b in s["beats"])
    whispered = _run(tmp_path, SCREENPLAY, "--format", "screenplay", "--quiet")
    lines = [d for s in whispered["scenes"] for b in s["beats"] for d in b["dialogue"]]
    assert [(d["kind"], d["off_panel"]) for d in lines] == [("whisper", False), ("speech", True)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--context", "4096"], "apply to the llama and openai parsers"),
        (["--window-seconds", "30"], "apply to the llama and openai parsers"),
        (["--format", "novel"], "invalid choice"),
    ],
)
def test_options_of_other_parsers_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(SCRIPT, "utf-8")
    try:
        rc = main(["parse", str(story), *args])
    except SystemExit as exc:  # argparse refuses unknown choices itself
        rc = int(exc.code or 0)
    assert rc != 0 and message in capsys.readouterr().err
