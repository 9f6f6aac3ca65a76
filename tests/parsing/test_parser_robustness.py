"""Any text parses into a valid ParsedStory: the parser never crashes on odd input."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comic_studio.parsing import parse
from comic_studio.parsing.bench import BENCH_CHARACTERS

_PIECES = st.sampled_from(
    [
        "Bella", "Edward", "Zoë's", "she", "him", "his", "they", "and", "then", ",", ".", "...", "!", "?",
        '"', "“", "”", "'", "‘", "’", "*", "_", ";", "\n\n", "\n", "INT. KITCHEN - NIGHT\n", "***\n",
        "Scene 3:", "## Dawn\n", "opens the door", "said", "whispered", "Meanwhile,", "Three years later,",
        "at the docks", "Mr.", "e.g.", "It was", "over Bella's shoulder", "eyes", "crowd", "—", "  ",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=60).map(" ".join))
def test_structured_noise_always_validates(text: str) -> None:
    result = parse(text, BENCH_CHARACTERS)  # parse() validates against the library
    for beat in result.beats():
        assert beat.action.strip() or beat.dialogue or beat.caption.strip()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_always_validates(text: str) -> None:
    parse(text, [])
    parse(text, BENCH_CHARACTERS)


@pytest.mark.parametrize(
    "text",
    [
        "It was cold. " * 10_000,  # many sentences in one paragraph (abbreviation look-behind)
        "'a " * 40_000,  # single quotes that never close
        '"a ' * 40_000,
        "*a " * 40_000,
        "“" * 60_000,
        "word " * 40_000,  # one endless sentence without punctuation
        "Bella opens the door, " * 8_000,
        ("Bella and " * 8_000) + "Edward walk.",
        "INT. " + "X" * 5_000 + "\n\nBella sits.",
    ],
    ids=["sentences", "open-single", "straight-double", "asterisks", "curly", "no-punctuation", "comma-splices", "subjects", "long-heading"],
)
def test_pathological_input_is_linear_and_fits_the_model(text: str) -> None:
    """Quadratic scans would take minutes at these sizes; field limits (5,000-char actions,
    2,000-char titles) must be respected rather than crash the parse."""
    t0 = time.perf_counter()
    result = parse(text, BENCH_CHARACTERS)
    assert time.perf_counter() - t0 < 8.0
    for scene in result.scenes:
        assert len(scene.title) <= 2_000
        for beat in scene.beats:
            assert len(beat.action) <= 5_000 and len(beat.caption) <= 5_000
