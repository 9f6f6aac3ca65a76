"""Screenplay text → :class:`~comic_studio.parsing.forms.ScriptElement` list: the Fountain format
(https://fountain.io/syntax) and the loose screenplay text people type without knowing it.

Fountain elements handled: the title page (``Title:`` … up to the first blank line), scene headings
(``INT.``/``EXT.``/``EST.``/``INT./EXT.``/``I/E`` or forced with a leading ``.``; a trailing scene
number ``#12#`` is dropped), character cues (a line in capitals after a blank line with text under
it, or forced with ``@``; extensions ``(V.O.)``/``(O.S.)``/``(CONT'D)``; ``^`` dual dialogue),
parentheticals (``(whispering)`` changes the balloon kind), dialogue and lyrics (``~``),
transitions (``CUT TO:``, ``> FADE OUT``: no panel), centered text (``> THE END <`` → a caption),
notes (``[[…]]`` → notes to the artist), the boneyard (``/* … */``: left out), sections (``#``)
and synopses (``=``, kept as notes), page breaks (``===``), forced action (``!``) and emphasis
marks (``*``, ``_``), which are stripped.

Loose screenplay text also reads: a cue with no blank line above it, dialogue in the same
paragraph as the action, and ``NAME: line`` dialogue (radio-play style).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from comic_studio.core.model import DialogueKind
from comic_studio.parsing.forms import (
    CUE_NAME,
    SCENE_HEADING,
    TRANSITION,
    ScriptElement,
    cue_name,
    is_cue_line,
    is_inline_cue,
    voice_of,
)
from comic_studio.parsing.text import match_heading

_TITLE_KEY = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]{0,30}):\s*(?P<value>.*)$")
_SCENE_NUMBER = re.compile(r"\s*#[\w.\-]+#\s*$")
_UNDERSCORE_MARK = re.compile(r"(?<!\w)_+(?=\S)|(?<=\S)_+(?!\w)")
_INLINE_LINE = re.compile(rf"^(?P<cue>{CUE_NAME})\s*(?P<ext>(?:\([^)]*\)\s*)*):\s+(?P<text>\S.*)$")
_CENTERED = re.compile(r"^>\s*(?P<text>.*?)\s*<$")


def _plain(text: str) -> str:
    """Emphasis marks off (``*bold*``, ``_**nested**_``; ``\\*`` keeps a literal star), spaces tidied.

    One pass of plain replacements, linear in the text: matching each opening mark with its
    closing one (a lazy regex) would scan to the end of the text for every unmatched star."""
    text = text.replace("\\*", "\x01").replace("\\_", "\x02").replace("*", "")
    text = _UNDERSCORE_MARK.sub("", text).replace("\x01", "*").replace("\x02", "_")
    return " ".join(text.split())


def _cut_spans(text: str, opening: str, closing: str, keep: Callable[[str], str]) -> str:
    """``text`` with every ``opening…closing`` span replaced by ``keep(inside)``, scanning once (an
    unclosed opening is left as text, as Fountain leaves it)."""
    out: list[str] = []
    i = 0
    while True:
        start = text.find(opening, i)
        if start < 0:
            break
        stop = text.find(closing, start + len(opening))
        if stop < 0:
            break
        out.append(text[i:start])
        out.append(keep(text[start + len(opening) : stop]))
        i = stop + len(closing)
    out.append(text[i:])
    return "".join(out)


def read_screenplay(text: str) -> tuple[str, list[ScriptElement]]:
    """``(title, elements)``: the title page's title (or "") and the screenplay's elements."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    text = _cut_spans(text, "/*", "*/", lambda _inside: "")  # the boneyard: left out
    notes: list[str] = []

    def keep_note(inside: str) -> str:
        notes.append(" ".join(inside.replace("\x00", "").split()))
        return f"\x00{len(notes) - 1}\x00"  # a marker: the note goes where it was written

    text = _cut_spans(text.replace("\x00", ""), "[[", "]]", keep_note)
    title, body = _title_page(text)
    out: list[ScriptElement] = []
    rows_all = body.split("\n")
    names = {cue_name(r)[0].upper() for r in rows_all if is_cue_line(r)}
    names |= {m["cue"].strip() for r in rows_all if (m := _INLINE_LINE.match(r.strip())) and m["cue"].isupper()}
    for paragraph in re.split(r"\n[ \t]*\n", body):
        _paragraph(paragraph.split("\n"), out, notes, names)
    return title, [e for e in out if e.kind == "scene" or e.text.strip()]


def _title_page(text: str) -> tuple[str, str]:
    lines = text.lstrip("\n").split("\n")
    first = _TITLE_KEY.match(lines[0]) if lines else None
    if first is None or first["key"].lower() not in ("title", "credit", "author", "authors", "source", "draft date"):
        return "", text
    title = ""
    k = 0
    key = ""
    while k < len(lines) and lines[k].strip():
        m = _TITLE_KEY.match(lines[k])
        if m and not lines[k].startswith((" ", "\t")):
            key = m["key"].lower()
            value = m["value"].strip()
        else:
            value = lines[k].strip()
        if key == "title" and value:
            title = f"{title} {_plain(value)}".strip()
        k += 1
    return title, "\n".join(lines[k:])


def _paragraph(rows: list[str], out: list[ScriptElement], notes: list[str], names: set[str]) -> None:
    """One block of rows between blank lines; ``names``: every cue name of the text, in capitals."""
    k = 0
    action: list[str] = []

    def flush_action() -> None:
        if action:
            out.append(ScriptElement("action", text=_plain(" ".join(action))))
            action.clear()

    while k < len(rows):
        raw = rows[k]
        s = raw.strip()
        k += 1
        if "\x00" in s:
            s = _take_notes(s, out, notes)
        if not s:
            continue
        if s.startswith("!"):  # forced action
            action.append(s[1:])
            continue
        if re.fullmatch(r"={3,}", s) or s.startswith("#"):  # page break; section (structure only)
            continue
        if s.startswith("=") and not s.startswith("=="):
            out.append(ScriptElement("note", text=_plain(s[1:])))  # synopsis
            continue
        centered = _CENTERED.match(s)
        if centered:
            flush_action()
            out.append(ScriptElement("caption", text=_plain(centered["text"])))
            continue
        if SCENE_HEADING.match(s) and (s.startswith(".") or s.upper() == s or len(s) < 60):
            flush_action()
            out.append(_scene(s))
            continue
        if TRANSITION.match(s) and (s.startswith(">") or s.upper() == s):
            flush_action()
            continue
        nxt = rows[k].strip() if k < len(rows) else ""
        if is_cue_line(s) and nxt and not is_cue_line(nxt) and not SCENE_HEADING.match(nxt):
            flush_action()
            k = _dialogue(s, rows, k, out, notes, names if k > 1 else set())
            continue
        inline = _INLINE_LINE.match(s)
        if inline and inline["cue"].strip().isupper():
            flush_action()
            kind, off = voice_of(" ".join(re.findall(r"\(([^)]*)\)", inline["ext"])))
            out.append(
                ScriptElement(
                    "line",
                    text=_plain(inline["text"]),
                    speaker=inline["cue"].strip(),
                    dialogue_kind=kind or DialogueKind.SPEECH,
                    off_panel=off,
                )
            )
            continue
        action.append(s)
    flush_action()


def _take_notes(s: str, out: list[ScriptElement], notes: list[str]) -> str:
    rest = re.sub("\x00(\\d+)\x00", "", s).strip()

    def put(m: re.Match[str]) -> str:
        out.append(ScriptElement("note", text=notes[int(m.group(1))], inline=bool(rest)))
        return ""

    re.sub("\x00(\\d+)\x00", put, s)
    return rest


def _scene(line: str) -> ScriptElement:
    s = _SCENE_NUMBER.sub("", line.strip())
    if s.startswith(".") and not s.startswith(".."):
        s = s[1:]
    heading = match_heading(s.upper() if s[:3].lower() in ("int", "ext") else s)
    title = _plain(s)
    if heading is not None and heading.setting:
        return ScriptElement("scene", title=title, setting=heading.setting, time_of_day=heading.time_of_day)
    place, _, time = title.partition(" - ")
    place = re.sub(r"^(?:int|ext|est|i/e|int\.?/ext)\.?\s*", "", place, flags=re.I)
    place = re.sub(r"^(?:the|a|an)\s+", "", place.strip().lower())
    return ScriptElement("scene", title=title, setting=place, time_of_day=time.strip().lower())


def _dialogue(cue: str, rows: list[str], k: int, out: list[ScriptElement], notes: list[str], loose: set[str]) -> int:
    """The dialogue block under ``cue`` (rows from ``k``): one line element per run of speech, a
    parenthetical changing the kind of what follows it. Returns the next row to read.

    ``loose``: the cue had no blank line above it (loose text), and these are the story's speakers:
    the block then also ends at a ``NAME: line`` row or at a row that opens with a speaker's name
    in name case ("Sally sits beside him."): action that was typed without a blank line."""
    name, extension = cue_name(cue)
    base_kind, off = voice_of(extension)
    kind = base_kind
    words: list[str] = []

    def flush() -> None:
        if words:
            out.append(
                ScriptElement(
                    "line",
                    text=_plain(" ".join(words)),
                    speaker=name,
                    dialogue_kind=kind or DialogueKind.SPEECH,
                    off_panel=off,
                )
            )
            words.clear()

    while k < len(rows):
        s = rows[k].strip()
        if "\x00" in s:
            s = _take_notes(s, out, notes)
        if not s:
            k += 1
            continue
        if is_cue_line(s) and k + 1 < len(rows) and rows[k + 1].strip() and not s.startswith("("):
            break  # loose text: the next speaker without a blank line
        if SCENE_HEADING.match(s) and s.upper() == s:
            break
        if loose and words and (is_inline_cue(s) or (s.split()[0].upper() in loose and not s.isupper())):
            break
        k += 1
        if s.startswith("(") and s.endswith(")"):
            flush()
            parenthetical, _ = voice_of(s[1:-1])
            kind = parenthetical or base_kind
            continue
        words.append(s.lstrip("~").strip())
    flush()
    return k
