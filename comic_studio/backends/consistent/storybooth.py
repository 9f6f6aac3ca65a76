"""The ``storybooth`` backend: StoryBooth (seed 001) by name, so it can be picked for a panel and
compared with the other methods. StoryBooth = consistent attention + the characters' trained
LoRAs, and nothing else: hence a thin subclass living in the ``consistent`` package (registered as
``storybooth = "comic_studio.backends.consistent:StoryboothBackend"``).

The ``consistent`` backend already applies a character's enabled LoRA while the character is in
the panel (the workflows pass them in the ``character_loras`` setting), so StoryBooth's render is
that backend's, pixel for pixel. What this backend adds is the method's precondition: every
character it draws has a trained LoRA. Without one the panel would silently be a plain
``consistent`` render under StoryBooth's name, so the job is refused, naming the characters and
how to train them.
"""

from __future__ import annotations

from comic_studio.backends.consistent.backend import ConsistentBackend
from comic_studio.generation.backend_api import NEEDS_CHARACTER_LORAS, MissingCharacterLoras, characters_without_lora
from comic_studio.generation.request import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    StepCallback,
)


class StoryboothBackend(ConsistentBackend):
    name = "storybooth"
    display_name = "StoryBooth (consistent attention + character LoRAs)"
    capabilities = ConsistentBackend.capabilities | frozenset({NEEDS_CHARACTER_LORAS})

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        missing = characters_without_lora(request)
        if missing:
            raise MissingCharacterLoras(self.name, [(c.id, c.name) for c in missing])
        if request.characters and not self.job_settings(request)["character_loras"].strip():
            raise GenerationError(
                "storybooth: the characters' LoRA files were not passed to the job (the 'character_loras' "
                "setting is empty); render through the studio or `comic-studio render`, which fill it in"
            )
        return super().generate(request, on_step)
