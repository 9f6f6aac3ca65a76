"""The three forms a story arrives in — prose, a comic full script, a screenplay — and how to tell them
apart; the script elements both script readers produce.

Detection counts the lines that only one form writes: page and panel headings ("PAGE ONE",
"Panel 2.") for a comic script; scene headings ("INT. KITCHEN - NIGHT"), transitions and character
cues (a line in capitals with dialogue under it) for a screenplay. Prose has few of either, so it
wins unless a script form has enough of its own marks (a stray "INT." in a novel stays prose).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from comic_studio.core.model import DialogueKind
from comic_studio.parsing.errors import ParseError


class StoryForm(str, Enum):
    AUTO = "auto"
    PROSE = "prose"
    COMIC = "comic"
    SCREENPLAY = "screenplay"


FORM_LABELS = {
    StoryForm.AUTO: "Auto-detect",
    StoryForm.PROSE: "Prose",
    StoryForm.COMIC: "Comic script",
    StoryForm.SCREENPLAY: "Screenplay",
}


def story_form(value: str | StoryForm) -> StoryForm:
    """The form named by ``value`` ("auto", "prose", "comic", "screenplay"), or a ParseError saying which exist."""
    try:
        return StoryForm(value)
    except ValueError:
        names = ", ".join(f.value for f in StoryForm)
        raise ParseError(f"unknown story form {value!r}; use one of: {names}", "format") from None


_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
NUMBER = r"(?:\d{1,5}|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ]?(?:one|two|three|four|five|six|seven|eight|nine))?|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
"""A page or panel number as writers write it: digits or English words up to ninety-nine."""


def number_value(word: str) -> int:
    """``"12"`` → 12, ``"Twenty-One"`` → 21 (a match of :data:`NUMBER`)."""
    low = word.lower().replace(" ", "-")
    if low.isdigit():
        return int(low)
    if low in _NUMBER_WORDS:
        return _NUMBER_WORDS[low]
    tens, _, unit = low.partition("-")
    if not unit:  # "twentyone"
        for t in _TENS:
            if low.startswith(t):
                tens, unit = t, low[len(t) :]
    return _TENS[tens] + (_NUMBER_WORDS[unit] if unit else 0)


# Decorations around a heading line: markdown (#, **, __), brackets, trailing colon or dash.
_DECOR = r"[\s#*_\[\]]*"
PAGE_HEADING = re.compile(
    rf"^{_DECOR}pages?\s+(?P<a>{NUMBER})(?:\s*(?:-|–|—|to|and|&)\s*(?P<b>{NUMBER}))?\b{_DECOR}"
    rf"(?:[:.,\-–—]\s*)?(?:\((?P<aside>[^)]*)\))?{_DECOR}(?:[:.]\s*)?(?P<rest>.*)$",
    re.I,
)
PANEL_HEADING = re.compile(
    rf"^{_DECOR}(?:panel|pnl\.?)\s*#?\s*(?P<n>{NUMBER})\b{_DECOR}[:.\-–—]?{_DECOR}(?P<rest>.*)$",
    re.I,
)
SCENE_HEADING = re.compile(
    r"^\s*(?:(?:int|ext|est|int\.?/ext|i/e|e/i)[.\s]\s*\S|\.(?=[^.\s]))",
    re.I,
)
TRANSITION = re.compile(r"^\s*(?:[A-Z0-9 .'’\-]+ TO:|FADE (?:IN|OUT)[:.]?|CUT TO BLACK\.?|>\s*[^<]+)\s*$")
# A name in a cue: letters of any script, digits, spaces, dots, apostrophes, hyphens; whether it is
# in capitals is checked with str.isupper (the regex alone cannot say "upper case" beyond ASCII).
CUE_NAME = r"[^\W\d_][\w .'’\-]{0,40}?"
_CUE = re.compile(rf"^\s*@?(?P<name>{CUE_NAME})\s*(?:\([^)]*\)\s*)*\^?\s*$")
_INLINE_CUE = re.compile(rf"^\s*(?:\d+[.)]\s*)?(?P<name>{CUE_NAME})\s*(?:\([^)]*\))?\s*:\s*\S")


def is_cue_line(line: str) -> bool:
    """A character cue: a short line in capitals (an extension in brackets allowed, ``@name`` forced)."""
    s = line.strip()
    if s.startswith("@") and len(s) > 1:
        return True
    m = _CUE.match(s)
    if not m or TRANSITION.match(s) or SCENE_HEADING.match(s):
        return False
    name = m["name"].strip()
    return name.isupper() and len(name.split()) <= 4 and not name.endswith((".", "!", "?"))


def is_inline_cue(line: str) -> bool:
    """``NAME: text`` or ``NAME (OFF): text`` with the name in capitals (radio-play and loose scripts)."""
    m = _INLINE_CUE.match(line)
    return m is not None and m["name"].strip().isupper()


def detect_form(text: str) -> StoryForm:
    """Prose, comic script or screenplay, by counting each form's own marks (see the module doc)."""
    pages = panels = headings = transitions = cues = inline = lines = 0
    rows = text.replace("\r\n", "\n").split("\n")
    for k, row in enumerate(rows[:20_000]):  # the opening of a long text is enough to tell
        s = row.strip()
        if not s:
            continue
        lines += 1
        # Cheap first looks (a prose line is mostly none of these) before any regex runs.
        low = s.lstrip("#*_[ ").lower()
        if low.startswith(("page", "panel", "pnl")):
            page = PAGE_HEADING.match(s)
            if page and len(s) < 80:
                pages += 1
                panels += bool(PANEL_HEADING.match(page["rest"].lstrip(",;:-–— ")))  # "PAGE 3, PANEL 1"
            elif PANEL_HEADING.match(s):
                panels += 1
        elif low.startswith(("int", "ext", "est", "i/e", "e/i")) and SCENE_HEADING.match(s) and len(s) < 100:
            headings += 1
        elif s.split("(")[0].isupper() or s[0] in ">@":
            if TRANSITION.match(s):
                transitions += 1
            elif is_cue_line(s) and k + 1 < len(rows) and rows[k + 1].strip() and not is_cue_line(rows[k + 1]):
                cues += 1  # loose text may skip the blank line above a cue
            elif is_inline_cue(s):
                inline += 1
        elif ":" in s[:48] and is_inline_cue(s):
            inline += 1
    if panels >= 2 or (pages >= 1 and panels >= 1):
        return StoryForm.COMIC
    if headings >= 1 and cues + transitions + inline >= 2 or cues >= 3 and cues * 6 >= lines:
        return StoryForm.SCREENPLAY
    return StoryForm.PROSE


@dataclass
class ScriptElement:
    """One element of a script, in reading order.

    ``kind``: "scene" (a screenplay scene heading or a comic page: ``title``, ``setting``,
    ``time_of_day``, ``page``), "panel" (a comic panel heading), "action" (panel description or
    screenplay action), "line" (dialogue: ``speaker`` as written, ``dialogue_kind``, ``off_panel``),
    "caption", "sfx" or "note" (to the artist; never lettered).
    """

    kind: str
    text: str = ""
    speaker: str = ""
    dialogue_kind: DialogueKind = DialogueKind.SPEECH
    off_panel: bool = False
    page: int = 0
    title: str = ""
    setting: str = ""
    time_of_day: str = ""
    inline: bool = False
    """A note written inside an action line (about that action) rather than on its own."""


# Cue extensions and parentheticals → balloon kind / off-panel.
_OFF = frozenset({"off", "o.s.", "os", "o.c.", "oc", "v.o.", "vo", "off-panel", "off panel", "op", "o.p."})
_DEVICE = ("radio", "phone", "tv", "television", "intercom", "electronic", "speaker", "filtered", "comm")
_WHISPER = ("whisper",)
_THOUGHT = ("thought", "thinks", "thinking", "think")
_SHOUT = ("burst", "shout", "yell", "scream", "loud", "bellow", "roar")


def voice_of(extension: str) -> tuple[DialogueKind | None, bool]:
    """``"OFF"`` → (None, off-panel), ``"WHISPER"`` → whisper, ``"burst"`` → shout; (None, False)
    for extensions that change nothing (``CONT'D``) or are stage directions."""
    kind: DialogueKind | None = None
    off = False
    for part in re.split(r"[,;/]", extension.lower()):
        p = part.strip()
        heard_through = p.startswith(("on ", "over ", "through ", "via ")) and any(
            w.startswith(_DEVICE) for w in p.split()
        )
        if p in _OFF or p.startswith(_DEVICE) or heard_through:  # "(RADIO)", "(ON PHONE)": a voice from a device
            off = True
        elif p.startswith(_WHISPER) or p in ("quietly", "softly", "under breath", "sotto voce"):
            kind = DialogueKind.WHISPER
        elif p.startswith(_THOUGHT):
            kind = DialogueKind.THOUGHT
        elif p.startswith(_SHOUT) or p in ("shouting", "yelling", "screaming"):
            kind = DialogueKind.SHOUT
    return kind, off


def cue_name(cue: str) -> tuple[str, str]:
    """``"MARY JANE (O.S.) ^"`` → ("MARY JANE", "O.S."): the name and its extensions."""
    s = cue.strip().lstrip("@").rstrip("^").strip()
    exts = re.findall(r"\(([^)]*)\)", s)
    name = re.sub(r"\([^)]*\)", "", s).strip().rstrip(":").strip()
    return name, ", ".join(exts)


def name_case(name: str) -> str:
    """A cue in capitals as a name: "MARY-JANE O'NEIL" → "Mary-Jane O'Neil"; mixed case is kept."""
    if not name.isupper():
        return name
    return re.sub(r"[^\W\d_]+", lambda m: m.group()[0] + m.group()[1:].lower(), name)
