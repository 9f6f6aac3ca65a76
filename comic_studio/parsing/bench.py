"""Throughput benchmark for the rule parser: ``python -m comic_studio.parsing.bench`` prints JSON."""

from __future__ import annotations

import json
import random
import time

from comic_studio.core.model import Character, Pronouns

BENCH_CHARACTERS = [
    Character(id="bella", name="Bella Swan", aliases=["Bells"], pronouns=Pronouns.SHE),
    Character(id="edward", name="Edward", pronouns=Pronouns.HE),
    Character(id="jacob", name="Jacob", pronouns=Pronouns.HE),
    Character(id="zoe", name="Zoë", pronouns=Pronouns.SHE),
]

_NARRATION = [
    "Bella opens the door and Edward steps inside.",
    "She hands him the key.",
    "Jacob glares at Edward across the kitchen.",
    "His eyes narrow.",
    "Zoë laughs and grabs Bella's hand.",
    "They run down the street toward the harbour.",
    "It had been raining for days.",
    "Mr. Banner waits at the station, e.g. by the old clock.",
    "Edward pushes Jacob, and he stumbles back.",
    "Bella and Zoë walk to the car in the evening.",
]
_DIALOGUE = [
    '"Where were you?" she asked.',
    '"Out," said Edward.',
    '"Don\'t lie to me. I saw you," Bella whispered.',
    '"Run!" Jacob shouted.',
    "*He knows,* Zoë thought.",
    "\"I told you 'never' twice,\" he said.",
]


def generate_story(words: int, seed: int = 0) -> str:
    """A story of about ``words`` words built from realistic sentences (headings every ~40 paragraphs)."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    count = 0
    scene = 1
    while count < words:
        if len(paragraphs) % 40 == 0:
            paragraphs.append(f"Scene {scene}: The harbour")
            scene += 1
        if rng.random() < 0.35:
            para = rng.choice(_DIALOGUE)
        else:
            para = " ".join(rng.choice(_NARRATION) for _ in range(rng.randint(2, 5)))
        paragraphs.append(para)
        count += len(para.split())
    return "\n\n".join(paragraphs)


_SCREENPLAY_HEAD = "INT. KITCHEN - NIGHT\n\nBELLA\nHi.\n\nEDWARD\nHello.\n\n"
PATHOLOGICAL_INPUTS = {
    "sentences": "It was cold. " * 10_000,  # many sentences in one paragraph (abbreviation look-behind)
    "open-single": "'a " * 40_000,  # single quotes that never close
    "straight-double": '"a ' * 40_000,
    "asterisks": "*a " * 40_000,
    "curly": "“" * 60_000,
    "no-punctuation": "word " * 40_000,  # one endless sentence without punctuation
    "comma-splices": "Bella opens the door, " * 8_000,
    "subjects": ("Bella and " * 8_000) + "Edward walk.",
    "long-heading": "INT. " + "X" * 5_000 + "\n\nBella sits.",
    # Script forms (auto-detected as screenplays / comic scripts): marks that never close.
    "fountain-boneyard": _SCREENPLAY_HEAD + "/* x " * 20_000,
    "fountain-notes": _SCREENPLAY_HEAD + "[[ x " * 20_000,
    "fountain-emphasis": _SCREENPLAY_HEAD + "BELLA\n" + "*a _b " * 20_000,
    "comic-panels": "PAGE 1\n" + "PANEL 1\nBELLA (WHISPER): hi\nSFX: BAM\n" * 5_000,
}
"""Inputs on which a quadratic scan would take minutes (the tests check the result, this bench the time)."""


def bench_parser(
    words: int = 100_000, repeats: int = 1, pathological: dict[str, str] | None = None
) -> dict[str, float | int | str]:
    """Parse a generated ~``words``-word story; report words/s (best of ``repeats``), and the slowest
    of the ``pathological`` inputs (default :data:`PATHOLOGICAL_INPUTS`)."""
    from comic_studio.parsing.registry import parse

    text = generate_story(words)
    n_words = len(text.split())
    best = float("inf")
    beats = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = parse(text, BENCH_CHARACTERS)
        best = min(best, time.perf_counter() - t0)
        beats = len(result.beats())
    worst_name, worst_s = "", 0.0
    for name, text in (PATHOLOGICAL_INPUTS if pathological is None else pathological).items():
        t0 = time.perf_counter()
        parse(text, BENCH_CHARACTERS)
        seconds = time.perf_counter() - t0
        if seconds > worst_s:
            worst_name, worst_s = name, seconds
    return {
        "words": n_words,
        "seconds": round(best, 3),
        "words_per_s": round(n_words / best),
        "beats": beats,
        "pathological_worst_s": round(worst_s, 3),
        "pathological_worst_input": worst_name,
    }


if __name__ == "__main__":
    print(json.dumps(bench_parser(repeats=3)))
