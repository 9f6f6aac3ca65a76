"""A fast backend with many steps for the bridge's coalescing test."""

from PIL import Image

from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.generation.request import GenerationResult


class BridgeStepsBackend(GenerationBackend):
    name = "bridge-steps"

    def generate(self, request, on_step=None):
        for i in range(51):
            if on_step is not None and on_step(i, 50, Image.new("RGB", (4, 4))) is False:
                raise RuntimeError("unexpected cancel")
        return GenerationResult([Image.new("RGB", (request.width, request.height))], request.seed, self.name)


def register() -> None:
    register_backend(BridgeStepsBackend.name, BridgeStepsBackend)


def unregister() -> None:
    unregister_backend(BridgeStepsBackend.name)
