"""Comic full script → :class:`~comic_studio.parsing.forms.ScriptElement` list (pages, panels and
what each panel holds), as writers write it:

* page headings ``PAGE ONE``, ``Page 1``, ``PAGES 2-3`` (a spread: its panels are shared between the
  two pages, the first half on the left page), with an aside such as ``(FIVE PANELS)``;
* panel headings ``PANEL 1``, ``Panel 1.``, ``PANEL ONE:``, ``**Panel 2**``, ``[Panel 3]``; text on
  the heading line after it is the start of the description;
* the panel description: every other line of the panel;
* ``CAPTION:``/``CAP:``/``NARRATION:`` (``CAPTION (ELI):`` too) → captions; ``SFX:``/``FX:``/
  ``SOUND:`` → sound effects; ``NOTE:``/``ARTIST NOTE:``, ``[[…]]`` and ``[…]`` lines → notes to
  the artist;
* dialogue ``NAME: text``, numbered (``1. NAME: text``) or with an extension: ``NAME (OFF):``
  (off-panel), ``(WHISPER)``, ``(THOUGHT)``, ``(BURST)``/``(SHOUT)`` → the balloon kind; a cue alone on
  its line with the text below it works too. Lines that follow a cue (until a blank line or the
  next cue) continue its text.
"""

from __future__ import annotations

import re

from comic_studio.core.model import DialogueKind
from comic_studio.parsing.forms import (
    PAGE_HEADING,
    PANEL_HEADING,
    ScriptElement,
    cue_name,
    is_cue_line,
    number_value,
    voice_of,
)

_LABELLED = re.compile(
    r"^\s*(?P<number>\d+[.)]\s*)?(?P<cue>[^\W\d_][^\W_:]*(?:[ .'’\-][^\W_:]+)*?\.?)\s*(?P<ext>(?:\([^)]*\)\s*)*)\s*:\s*(?P<text>.*)$"
)
_CAPTION_WORDS = frozenset({"caption", "cap", "captions", "narration", "narrator", "narr", "box", "title"})
_SFX_WORDS = frozenset({"sfx", "fx", "sound", "sound effect", "sound fx", "s.f.x.", "noise"})
_NOTE_WORDS = frozenset(
    {"note", "notes", "artist note", "art note", "note to artist", "notes to artist", "artist", "n.b.", "nb", "ref"}
)
_NOTE_LINE = re.compile(r"^\s*(?:\[\[(?P<a>.*?)\]\]|\[(?P<b>[^\[\]]*)\])\s*$")
_STRIP_MARKUP = re.compile(r"\*\*|__|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")


def _label_kind(cue: str) -> str:
    low = cue.lower().strip().rstrip(".")
    if low in _CAPTION_WORDS:
        return "caption"
    if low in _SFX_WORDS:
        return "sfx"
    if low in _NOTE_WORDS:
        return "note"
    return "line" if cue == cue.upper() else ""


def read_comic_script(text: str) -> list[ScriptElement]:
    """The script's elements in reading order; text before the first page heading is left out
    (front matter: title, credits), unless the script has no page headings at all."""
    out: list[ScriptElement] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    has_pages = any(PAGE_HEADING.match(s) for s in lines)
    in_page = not has_pages
    spread: list[int] = []  # page numbers of the current heading (two for a spread)
    next_page = 1
    current: ScriptElement | None = None  # the dialogue/caption/sfx/note that a next line continues
    pending_cue: tuple[str, str] | None = None  # a cue alone on its line, waiting for its text
    for raw in lines:
        s = raw.strip()
        if not s:
            current = None
            pending_cue = None
            continue
        page = PAGE_HEADING.match(s)
        if page and len(s) < 80:
            first = number_value(page["a"])
            last = number_value(page["b"]) if page["b"] else first
            first = first or next_page
            same_page = bool(spread) and spread[0] == first  # "PAGE 3, PANEL 2" after "PAGE 3, PANEL 1"
            spread = list(range(first, max(first, min(last, first + 1)) + 1))
            next_page = spread[-1] + 1
            if not same_page:
                out.append(ScriptElement("scene", page=spread[0], title=_page_title(spread)))
                if len(spread) > 1:
                    out[-1].setting = "spread"  # marks a two-page heading for the panel split below
            in_page = True
            current = pending_cue = None
            rest = page["rest"].strip().lstrip(",;:-–— ")
            same_line_panel = PANEL_HEADING.match(rest)
            if same_line_panel:  # "PAGE 3, PANEL 1: Wide on the harbour."
                out.append(ScriptElement("panel", page=number_value(same_line_panel["n"])))
                if same_line_panel["rest"].strip():
                    out.append(ScriptElement("action", text=_clean(same_line_panel["rest"])))
                    current = out[-1]
            elif rest:
                out.append(ScriptElement("note", text=_clean(rest)))
            continue
        if not in_page:
            continue
        panel = PANEL_HEADING.match(s)
        if panel:
            out.append(ScriptElement("panel", page=number_value(panel["n"])))
            current = pending_cue = None
            if panel["rest"].strip():
                out.append(ScriptElement("action", text=_clean(panel["rest"])))
                current = out[-1]
            continue
        note = _NOTE_LINE.match(s)
        if note:
            out.append(ScriptElement("note", text=_clean(note["a"] if note["a"] is not None else note["b"])))
            current = pending_cue = None
            continue
        if pending_cue is not None:
            out.append(_labelled("line", pending_cue[0], f"({pending_cue[1]})", s))
            current, pending_cue = out[-1], None
            continue
        labelled = _LABELLED.match(s)
        if labelled:
            kind = _label_kind(labelled["cue"])
            if not kind and labelled["number"] and len(labelled["cue"].split()) <= 3:
                kind = "line"  # "2. Mara: Hi": a numbered balloon, whatever the case of the name
            if kind:
                out.append(_labelled(kind, labelled["cue"], labelled["ext"], labelled["text"]))
                current = out[-1]
                continue
        if is_cue_line(s) and len(s.split("(")[0].split()) <= 3:
            name, ext = cue_name(s)
            kind = _label_kind(name) or "line"
            if kind == "line":
                pending_cue = (name, ext)
                continue
        if current is not None and current.kind != "action":
            current.text = f"{current.text} {_clean(s)}".strip()
            continue
        if current is not None:
            current.text = f"{current.text} {_clean(s)}"
            continue
        out.append(ScriptElement("action", text=_clean(s)))
        current = out[-1]
    return _split_spreads([e for e in out if e.kind in ("scene", "panel") or e.text.strip()])


_TITLE_LABEL = re.compile(r"^\s*(?:title|series)\s*:\s*(?P<title>\S.*?)\s*$", re.I)


def front_title(text: str) -> str:
    """The script's title from its front matter (the lines before the first page heading): a
    ``Title:`` line, else the first line when it is in capitals ("HARBOUR LIGHTS")."""
    first = ""
    for raw in text.replace("\r\n", "\n").split("\n")[:200]:
        s = raw.strip()
        if PAGE_HEADING.match(s) or PANEL_HEADING.match(s):
            break
        m = _TITLE_LABEL.match(s)
        if m:
            return _clean(m["title"])
        if s and not first:
            first = s
    return _clean(first.strip("#*_ ")) if first and first.isupper() and len(first) <= 100 else ""


def _labelled(kind: str, cue: str, extension: str, text: str) -> ScriptElement:
    voice, off = voice_of(", ".join(re.findall(r"\(([^)]*)\)", extension)))
    return ScriptElement(
        kind,
        text=_clean(text),
        speaker=cue.strip() if kind == "line" else "",
        dialogue_kind=voice or DialogueKind.SPEECH,
        off_panel=off,
    )


def _clean(text: str) -> str:
    return " ".join(_STRIP_MARKUP.sub("", text).split())


def _page_title(pages: list[int]) -> str:
    return f"Page {pages[0]}" if len(pages) == 1 else f"Pages {pages[0]}–{pages[-1]}"


def _split_spreads(elements: list[ScriptElement]) -> list[ScriptElement]:
    """A spread's panels: the first half on its left page, the rest on its right page (a spread of
    one panel stays one page: the layout cannot stretch a panel over two pages)."""
    out: list[ScriptElement] = []
    k = 0
    while k < len(elements):
        el = elements[k]
        out.append(el)
        k += 1
        if el.kind != "scene" or el.setting != "spread":
            continue
        el.setting = ""
        stop = k
        while stop < len(elements) and elements[stop].kind != "scene":
            stop += 1
        body = elements[k:stop]
        starts = [i for i, e in enumerate(body) if e.kind == "panel"]
        if len(starts) >= 2:
            cut = starts[(len(starts) + 1) // 2]
            el.title = f"Page {el.page}"
            right = ScriptElement("scene", page=el.page + 1, title=f"Page {el.page + 1}")
            body = [*body[:cut], right, *body[cut:]]
        out.extend(body)
        k = stop
    return out
