"""The llama parser driven from the outliner: model from the preferences, window progress shown,
beats marked by origin (model vs rule-parser fallback)."""

import pytest
from PySide6.QtCore import Qt
from tiny_gguf import write_tiny_gguf  # noqa: E402

from comic_studio.core.settings import load_settings, save_settings
from comic_studio.ui.outliner import StoryOutliner

STORY = "INT. ROOM - DAY\n\nMara opens the door. Theo waves.\n\nEXT. PIER - NIGHT\n\nMara runs."


def test_llama_parse_from_the_outliner(qtbot, ctx, tmp_path):
    pytest.importorskip("llama_cpp")
    settings, _ = load_settings()  # the ctx fixture points the config folder at tmp_path
    settings.llm_model = str(write_tiny_gguf(tmp_path / "tiny.gguf"))
    save_settings(settings)

    outliner = StoryOutliner(ctx, None)
    qtbot.addWidget(outliner)
    outliner.offer_suggestions = lambda suggestions: []
    texts: list[str] = []
    outliner.worker.progress_text.connect(texts.append)
    outliner.story_edit.setPlainText(STORY)
    outliner.parser_combo.setCurrentIndex(outliner.parser_combo.findText("llama"))
    qtbot.mouseClick(outliner.parse_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not outliner.worker.is_running(), timeout=120_000)
    beats = ctx.document.project.story.beats()
    assert beats and all(b.source in ("llm", "rules") for b in beats)
    assert any(t.startswith("window 1 of 2") for t in texts)
    scene = outliner.model.index(0, 0)
    icon_kinds = {
        outliner.model.index(r, 0, scene).data(Qt.ItemDataRole.ToolTipRole)
        for r in range(outliner.model.rowCount(scene))
    }
    assert all("parser" in t for t in icon_kinds)
    outliner.shutdown()
