"""The ``identity`` backend: plain SDXL (the ``sdxl`` backend's pipeline and plumbing) with the
panel's characters' learned identity tokens (StableIdentity, seed 002) placed in the prompt.

For one job, the k-th character with an identity gets the token pair
:func:`~comic_studio.training.identity.identity_tokens` ``(k)`` — the very tokens its file was
trained for — loaded into **both** tokenizers and text encoders from its textual-inversion file
(diffusers' ``load_textual_inversion``, ``clip_l`` into CLIP-L, ``clip_g`` into bigG), and taken out
again after the job (and the encoders pool at the end token meanwhile, as in training:
:func:`~comic_studio.generation.identity.pool_at_end_token`), so several identities share one prompt with their own signal words (§3.1.2).
The pair replaces the character's name where the prompt names it ("Ada waves at Bo" → "<identity-0-a>
<identity-0-b> waves at <identity-1-a> <identity-1-b>"); a character the prompt does not name gets
"<pair> person" in front. A panel whose character has no identity yet is refused, naming them.
"""

from __future__ import annotations

from typing import Any

from comic_studio.backends._diffusers.backend import (
    SDXL_DEFAULTS_OWNER,
    SdxlPipelineBackend,
    resized_to_panel,
    sdxl_settings,
)
from comic_studio.backends._diffusers.identities import JobIdentities, identity_prompt, parse_character_identities
from comic_studio.backends._diffusers.long_prompt import apply_long_prompt
from comic_studio.backends._diffusers.loras import JobLoras
from comic_studio.backends._diffusers.progress import StepReporter
from comic_studio.generation.backend_api import (
    NEEDS_CHARACTER_IDENTITIES,
    MissingCharacterIdentities,
    characters_without_identity,
    with_default_overrides,
)
from comic_studio.generation.request import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    RequestCharacter,
    StepCallback,
)


def identity_characters(request: GenerationRequest) -> list[RequestCharacter]:
    """The panel's characters, each once, in order; refuses any without identity tokens
    (:class:`~comic_studio.generation.backend_api.MissingCharacterIdentities`: the studio offers
    Train identity… for them)."""
    missing = characters_without_identity(request)
    if missing:
        raise MissingCharacterIdentities("identity", [(c.id, c.name) for c in missing])
    return list({c.id: c for c in request.characters}.values())


class IdentityBackend(SdxlPipelineBackend):
    name = "identity"
    display_name = "StableIdentity (SDXL)"
    capabilities = SdxlPipelineBackend.capabilities | {"identity", NEEDS_CHARACTER_IDENTITIES}

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        settings = sdxl_settings()
        # Set by the workflows for one job (never stored): {character id: identity file}.
        settings["character_identities"] = {
            "type": "str", "default": "", "label": "Character identities", "max_length": 200_000, "hidden": True,
            "help": "Filled in for each job from the characters' learned identity tokens.",
        }  # fmt: skip
        return with_default_overrides(settings, SDXL_DEFAULTS_OWNER)

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        characters = identity_characters(request)
        settings = self.job_settings(request)
        files = parse_character_identities(settings["character_identities"])
        absent = [c.name for c in characters if c.id not in files]
        if absent:
            raise GenerationError(f"the identity tokens of {', '.join(absent)} were not handed to the job")
        pipe, call = self.prepare_call(request, settings)
        call["prompt"] = identity_prompt(request.prompt, [c.name for c in characters])
        identities = JobIdentities([files[c.id] for c in characters], [c.identity_scale for c in characters])
        loras = JobLoras(settings["loras"], settings["allow_pickle"], settings["character_loras"])
        try:
            identities.apply(pipe)
            loras.apply(pipe)
            apply_long_prompt(pipe, call)
            reporter = StepReporter(on_step, settings["preview_every"])
            images = pipe(**call, callback_on_step_end=reporter.callback()).images
        finally:
            loras.remove()
            identities.remove()
        image = resized_to_panel(images[0], request)
        return GenerationResult(images=[image], seed=request.seed, backend=self.name, settings=settings)


__all__ = ["IdentityBackend", "JobIdentities", "identity_prompt", "parse_character_identities"]
