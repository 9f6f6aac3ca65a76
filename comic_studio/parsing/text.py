"""Text splitting: scene headings, paragraphs, quoted speech and sentences.

Quotes are cut out of a paragraph *before* sentence splitting (replaced by placeholder tokens), so
a quote that spans several sentences ("Wait. Don't go," she said.) stays one dialogue line and its
inner punctuation never ends a narration sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from comic_studio.core.model import DialogueKind
from comic_studio.parsing.lexicon import ABBREVIATIONS

# ----------------------------------------------------------------------------- scene headings

_SLUG = re.compile(
    r"^\s*(?:INT|EXT|INT\.?\s*/\s*EXT|I/E)\.?\s+(?P<place>[^\n]+?)(?:\s+[-–—]+\s+(?P<time>[^\n]+?))?\s*$"
)
_SCENE_N = re.compile(
    r"^\s*(?:scene|chapter|part)\s+(?:\d+|[ivxlc]+|[a-z]+)\s*(?:[:.\-–—]\s*(?P<title>.*?))?\s*$", re.I
)
_MD_HEADING = re.compile(r"^\s*#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_SEPARATOR = re.compile(r"^\s*(?:(?:\*\s*){3,}|(?:-\s*){3,}|(?:_\s*){3,}|(?:~\s*){3,}|#|(?:•\s*){3,})\s*$")


@dataclass
class Heading:
    title: str = ""
    setting: str = ""
    time_of_day: str = ""


def match_heading(line: str) -> Heading | None:
    """A scene heading or separator line, or None for an ordinary line."""
    if _SEPARATOR.match(line):
        return Heading()
    m = _SLUG.match(line)
    if m:
        place = m.group("place").strip().rstrip(".")
        time = (m.group("time") or "").strip().rstrip(".")
        return Heading(title=line.strip(), setting=place.lower(), time_of_day=time.lower())
    m = _SCENE_N.match(line)
    if m and len(line) < 120:
        title = (m.group("title") or "").strip()
        return Heading(
            title=title or line.strip(), setting=_setting_from_title(title), time_of_day=_time_from_title(title)
        )
    m = _MD_HEADING.match(line)
    if m:
        title = m.group("title").strip()
        return Heading(title=title, setting=_setting_from_title(title), time_of_day=_time_from_title(title))
    return None


_TITLE_LINE = re.compile(r"^\s*(?:(?i:title):\s*(?P<labelled>\S.*?)|(?P<caps>[^a-z\n]*[A-Z][^a-z\n]*?))\s*$")


def split_title(text: str) -> tuple[str, str]:
    """Split off a title that opens the story: a lone line in capitals ("THE LIGHTHOUSE KEY") or
    "Title: ..." followed by a blank line. Returns ``(title, rest)``; no title → ``("", text)``.
    A title is not narration: it must not become a caption of the first panel."""
    stripped = text.lstrip("\ufeff\n\r\t ")
    first, sep, rest = stripped.partition("\n")
    if not sep or not rest.lstrip(" \t").startswith(("\n", "\r\n")) or len(first) > 100:
        return "", text
    m = _TITLE_LINE.match(first)
    if not m or match_heading(first) is not None:
        return "", text
    labelled = m.group("labelled")
    if labelled is None and (first.rstrip()[-1:] in ".!?\"'”" or first.upper() != first):
        return "", text
    return (labelled or first).strip(), rest


def _time_from_title(title: str) -> str:
    """ "## Morning" or "Scene 3: Dawn at the docks" → the time of day it names."""
    from comic_studio.parsing.lexicon import TIME_WORDS

    for word in re.findall(r"[^\W\d_]+", title.lower()):
        if word in TIME_WORDS and TIME_WORDS[word] != "day":
            return TIME_WORDS[word]
    return ""


def _setting_from_title(title: str) -> str:
    """'The harbour' → 'harbour'; titles like 'Revenge' carry no setting."""
    from comic_studio.parsing.lexicon import PLACE_NOUNS

    words = re.findall(r"[^\W\d_]+", title.lower())
    if not words or words[-1] not in PLACE_NOUNS:
        return ""
    # "Morning at the docks" → "docks": the place is what follows the last preposition.
    for i in range(len(words) - 1, -1, -1):
        if words[i] in ("at", "in", "on", "inside", "outside", "near", "by"):
            words = words[i + 1 :]
            break
    return " ".join(w for w in words if w not in ("the", "a", "an"))


@dataclass
class RawScene:
    heading: Heading | None
    paragraphs: list[str] = field(default_factory=list)


def split_scenes(text: str) -> list[RawScene]:
    """Split on heading/separator lines; paragraphs are blocks separated by blank lines.

    Time/place jumps after a blank line are detected later (they need sentence analysis).
    """
    scenes = [RawScene(None)]
    para: list[str] = []

    def flush() -> None:
        if para:
            scenes[-1].paragraphs.append(" ".join(para))
            para.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        heading = match_heading(stripped)
        if heading is not None:
            flush()
            if scenes[-1].paragraphs or scenes[-1].heading is not None:
                scenes.append(RawScene(heading))
            else:
                scenes[-1].heading = heading
            continue
        para.append(stripped)
    flush()
    return [s for s in scenes if s.paragraphs or s.heading is not None and (s.heading.title or s.heading.setting)]


# ----------------------------------------------------------------------------- quotes

Q_OPEN, Q_CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(Q_OPEN + r"(\d+)" + Q_CLOSE)


@dataclass
class Quote:
    text: str
    kind_hint: DialogueKind | None = None  # THOUGHT for *italics*, else decided by the tag
    unterminated: bool = False  # opened but not closed: continues in the next paragraph


_DOUBLE_OPEN = '"“„«'
_DOUBLE_CLOSE = '"”“»'
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")


def extract_quotes(paragraph: str) -> tuple[str, list[Quote]]:
    """Replace quoted speech and *italic thoughts* by placeholders; return masked text + quotes.

    Double quotes (straight or curly) win; single quotes count as speech only in a paragraph
    without double quotes, and an apostrophe inside a word (don't, Bella's) never opens or closes.
    Quotes nested inside the outer quote are kept in its text.
    """
    quotes: list[Quote] = []
    out: list[str] = []

    def add(text: str, hint: DialogueKind | None = None, unterminated: bool = False) -> None:
        if not unterminated and is_quoted_title(text):
            out.append(f"“{text.strip()}”")  # a title stays in the narration, not a balloon
            return
        out.append(f"{Q_OPEN}{len(quotes)}{Q_CLOSE}")
        quotes.append(Quote(text.strip(), hint, unterminated))

    has_double = any(ch in paragraph for ch in _DOUBLE_OPEN)
    i, n, start = 0, len(paragraph), 0
    if has_double:
        while i < n:
            ch = paragraph[i]
            if ch in _DOUBLE_OPEN:
                closers = '"' if ch == '"' else _DOUBLE_CLOSE
                j = i + 1
                while j < n and paragraph[j] not in closers:
                    j += 1
                out.append(paragraph[start:i])
                add(paragraph[i + 1 : j], unterminated=j >= n)
                i = start = j + 1
                continue
            i += 1
    else:
        no_close_from = n + 1  # once a search finds no closer, none exists further on either
        while i < n:
            ch = paragraph[i]
            if (
                ch in "'‘"
                and i + 1 < no_close_from
                and (i == 0 or not paragraph[i - 1].isalnum())
                and i + 1 < n
                and not paragraph[i + 1].isspace()
            ):
                j = _find_single_close(paragraph, i + 1)
                if j is None:
                    no_close_from = i + 1
                if j is not None:
                    out.append(paragraph[start:i])
                    add(paragraph[i + 1 : j])
                    i = start = j + 1
                    continue
            i += 1
    out.append(paragraph[start:])
    masked = "".join(out)

    # *Italic* or _underscored_ spans outside quotes are thoughts; a single emphasised word is not.
    def italic(m: re.Match[str]) -> str:
        body = m.group(1) or m.group(2)
        if " " not in body.strip() and not body.rstrip().endswith(("?", "!", ".")):
            return body
        out_ph = f"{Q_OPEN}{len(quotes)}{Q_CLOSE}"
        quotes.append(Quote(body.strip(), DialogueKind.THOUGHT))
        return out_ph

    if "*" in masked or "_" in masked:
        masked = _ITALIC.sub(italic, masked)
    return masked, [q for q in quotes]


_TITLE_SMALL = frozenset("a an the and or but of in on at to for with from by as nor is".split())


def is_quoted_title(text: str) -> bool:
    """A quoted title ("The Old Man and the Sea", "Yesterday"), not speech: no end punctuation
    (speech in quotes ends in one of .,!?… or a dash), at most ten words, and every word but
    the small ones capitalised."""
    body = text.strip()
    if not body or body[-1] in ".,!?…—–-:;" or len(body) > 80:
        return False
    words = re.findall(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+", body)
    if not words or len(words) > 10:
        return False
    big = [w for k, w in enumerate(words) if k == 0 or w.lower() not in _TITLE_SMALL]
    return all(w[:1].isupper() or w[:1].isdigit() for w in big) and not (len(words) == 1 and words[0] == "I")


def _find_single_close(text: str, i: int) -> int | None:
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "'’":
            nxt = text[i + 1] if i + 1 < n else " "
            prev = text[i - 1]
            # An apostrophe between letters (don't, Bella's) is part of a word.
            if not (prev.isalpha() and nxt.isalpha()) and not prev.isspace() and not nxt.isalnum():
                return i
        i += 1
    return None


def placeholders(text: str) -> list[int]:
    return [int(m.group(1)) for m in _PLACEHOLDER.finditer(text)]


def strip_placeholders(text: str) -> str:
    return _PLACEHOLDER.sub(" ", text)


# ----------------------------------------------------------------------------- sentences

_BOUNDARY = re.compile(r"(?:[.!?]+|…|\.\.\.)[\"'”’)\]]*(?=\s+[\"'“‘(\[]?(?:[^\W\d_a-z]|" + Q_OPEN + r"|\d))")
_WORD_BEFORE = re.compile(r"([\w.]+)$")


def split_sentences(text: str) -> list[str]:
    """Split masked narration into sentences, ignoring abbreviations (Mr., e.g.) and initials."""
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if text[m.start()] == "." and m.group().startswith(".") and not m.group().startswith(".."):
            wb = _WORD_BEFORE.search(text, max(0, m.start() - 24), m.start())  # windowed: linear time
            word = wb.group(1).lower() if wb else ""
            if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or word.count(".") >= 1 and len(word) <= 4:
                continue
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences
