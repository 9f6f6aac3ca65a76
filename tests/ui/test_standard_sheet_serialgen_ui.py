"""The paper's own stage 1 from the character library: "Standardize with SerialGen's model" queues
the serialgen sheet job (tiny stage-1 weights here) and records the sheet like the kit's; without
the weights it queues nothing and names the files to get."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import cid  # noqa: E402
from PIL import Image  # noqa: E402

from comic_studio.testing.tiny_serialgen import use_tiny_serialgen  # noqa: E402

BRANDT = Path(__file__).resolve().parents[1] / "vision" / "fixtures" / "brandt_1male.png"


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_serialgen_sheet_from_the_library(studio, tiny_models, qtbot):
    ctx, service, library, messages = studio
    ana = cid(ctx.document, "Ana")
    character = ctx.document.project.character(ana)
    character.body_refs = [ctx.document.assets.add(_png(Image.open(BRANDT).convert("RGB")))]
    author_picture = character.body_refs[0]
    library.select(ana)
    assert library.standardize(standardizer="serialgen") == []  # no stage-1 weights installed
    assert "denoising_unet.pth, reference_unet.pth, pose_guider.pth" in messages[-1] and not service.jobs()

    use_tiny_serialgen(tiny_models.root / "serialgen", sd15_kit=tiny_models.root / "sd15")
    library.serialgen_sheet_action.trigger()
    (job,) = service.jobs()
    assert job.label == "Standard sheet: Ana" and job.sheet_for == ana
    qtbot.waitUntil(service.is_idle, timeout=120_000)
    character = ctx.document.project.character(ana)
    assert character.standard_sheet is not None and character.body_refs == [character.standard_sheet, author_picture]
    assert ctx.document.assets.open_image(character.standard_sheet).size == (512, 768)
    assert ctx.undo_stack.undoText() == "Set standard sheet"
