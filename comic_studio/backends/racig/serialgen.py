"""The ``serialgen`` backend: SerialGen's two stages with the models RaCig uses.

Stage 1 (standardize) is a job of its own (:mod:`comic_studio.workflows.standardize`): each
character's reference becomes a standard sheet. Stage 2 (personalize) is, until someone trains the
paper's personalizer, the racig path with each character's sheet as its only outfit reference — so
the method can be chosen for a panel by name and compared with racig on the author's own
references. A character without a sheet is refused by name (no silent fallback to the raw
reference: that would be plain racig under another name).
"""

from __future__ import annotations

from comic_studio.backends.racig.backend import RacigBackend
from comic_studio.generation.request import GenerationError, GenerationRequest, GenerationResult, StepCallback


class SerialgenBackend(RacigBackend):
    name = "serialgen"
    display_name = "SerialGen (standard sheets → RaCig)"
    capabilities = RacigBackend.capabilities - {"tryon"}

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        missing = [c.name for c in request.characters if c.standard_sheet is None]
        if missing:
            who = ", ".join(missing)
            raise GenerationError(
                f"the serialgen method draws each character from its standard sheet and {who} "
                f"{'has' if len(missing) == 1 else 'have'} none: Standardize… the character first "
                "(comic-studio standardize PROJECT --character NAME), or choose another method"
            )
        characters = [c.model_copy(update={"body_refs": [c.standard_sheet]}) for c in request.characters]
        return super().generate(request.model_copy(update={"characters": characters}), on_step)
