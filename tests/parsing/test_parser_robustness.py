"""Any text parses into a valid ParsedStory: the parser never crashes on odd input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from comic_studio.parsing import parse
from comic_studio.parsing.bench import BENCH_CHARACTERS, PATHOLOGICAL_INPUTS

_PIECES = st.sampled_from(
    [
        "Bella",
        "Edward",
        "Zoë's",
        "she",
        "him",
        "his",
        "they",
        "and",
        "then",
        ",",
        ".",
        "...",
        "!",
        "?",
        '"',
        "“",
        "”",
        "'",
        "‘",
        "’",
        "*",
        "_",
        ";",
        "\n\n",
        "\n",
        "INT. KITCHEN - NIGHT\n",
        "***\n",
        "Scene 3:",
        "## Dawn\n",
        "opens the door",
        "said",
        "whispered",
        "Meanwhile,",
        "Three years later,",
        "at the docks",
        "Mr.",
        "e.g.",
        "It was",
        "over Bella's shoulder",
        "eyes",
        "crowd",
        "—",
        "  ",
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


@pytest.mark.parametrize("text", list(PATHOLOGICAL_INPUTS.values()), ids=list(PATHOLOGICAL_INPUTS))
def test_pathological_input_fits_the_model(text: str) -> None:
    """Field limits (5,000-char actions, 2,000-char titles) must be respected rather than crash the
    parse. That it stays linear (a quadratic scan would take minutes) is measured by
    ``bench/run.py --only parser`` (``pathological_worst_s``)."""
    result = parse(text, BENCH_CHARACTERS)
    for scene in result.scenes:
        assert len(scene.title) <= 2_000
        for beat in scene.beats:
            assert len(beat.action) <= 5_000 and len(beat.caption) <= 5_000
