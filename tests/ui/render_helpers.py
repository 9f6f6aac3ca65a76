"""Shared pieces of the inspector / render service / queue panel tests (not a test module).

A small story laid out by the real pipeline, and test backends registered in-process exactly like
a plugin: one that blocks until released (to hold a job "running"), one that fails.
"""

from __future__ import annotations

import threading

from PIL import Image

from comic_studio.core.document import Document
from comic_studio.core.model import Character
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.request import Cancelled, GenerationResult
from comic_studio.workflows.story import story_to_document

STORY = (
    'Mara walked into the harbour office. "Where is the key?" Mara asked.\n\n'
    "Theo shrugged and pointed at the lighthouse.\n\n"
    "Mara ran outside."
)

# Word-overlap pose matching: the MiniLM matcher costs about a second per panel on a CPU.
FAST = {"pose_matching": "overlap", "supersample": 1}


def small_document(fast: bool = True) -> Document:
    doc = story_to_document(STORY, [Character(name="Mara", pronouns="she"), Character(name="Theo", pronouns="he")])
    if fast:
        for page in doc.project.pages:
            for panel in page.panels:
                panel.backend_settings = dict(FAST)
    return doc


def all_panels(doc: Document):
    return [p for page in doc.project.pages for p in page.panels_in_order()]


class GateBackend(GenerationBackend):
    """Reports steps (with a small preview) until :attr:`release` is set; cancellable per step."""

    name = "test-gate"
    display_name = "Test gate"
    release = threading.Event()
    started = threading.Event()

    @classmethod
    def settings_schema(cls):
        return {
            "steps": {"type": "int", "default": 4, "min": 1, "max": 50, "label": "Steps"},
            "strength": {"type": "float", "default": 0.5, "min": 0.0, "max": 1.0, "label": "Strength"},
            "tiled": {"type": "bool", "default": False, "label": "Tiled"},
            "sampler": {"type": "choice", "default": "euler", "choices": ["euler", "ddim"], "label": "Sampler"},
            "tag": {"type": "str", "default": "", "max_length": 8, "label": "Tag", "help": "Free text"},
        }

    def generate(self, request, on_step=None):
        settings = self.validate_settings(request.backend_settings)
        total = settings["steps"]
        type(self).started.set()
        step = 0
        preview = Image.new("RGB", (64, 48), "#cc3333")
        while True:
            if on_step is not None and on_step(min(step, total - 1), total, preview) is False:
                raise Cancelled("cancelled")
            if type(self).release.wait(0.01):
                break
            step += 1
        image = Image.new("RGB", (request.width, request.height), "#336699")
        return GenerationResult(images=[image], seed=request.seed, backend=self.name, settings=settings)


class FailingBackend(GenerationBackend):
    name = "test-fail"
    display_name = "Test failure"

    def generate(self, request, on_step=None):
        raise RuntimeError("the model file is corrupt")
