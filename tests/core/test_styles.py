from comic_studio.core.document import Document
from comic_studio.core.styles import style_presets
from comic_studio.workflows.requests import build_prompt


def test_presets_load_and_new_documents_carry_them():
    presets = style_presets()
    assert len(presets) >= 5 and len({s.id for s in presets}) == len(presets)
    assert all(s.prompt_suffix and s.negative for s in presets)
    doc = Document.new()
    assert [s.id for s in doc.project.styles] == [s.id for s in presets]
    assert doc.project.active_style().id == presets[0].id
    presets[0].name = "changed"
    assert style_presets()[0].name != "changed"  # copies, not the cached originals


def test_active_style_reaches_the_prompt():
    from comic_studio.core import editing

    doc = Document.new()
    editing.add_page(doc, "splash")
    panel = doc.project.pages[0].panels[0]
    assert doc.project.active_style().prompt_suffix in build_prompt(doc.project, panel, None)
