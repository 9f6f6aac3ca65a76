"""The ``identity`` backend: SDXL with each character's learned StableIdentity tokens in the prompt.

Register with the entry point ``identity = "comic_studio.backends.identity:IdentityBackend"``.
Importing this package does not import torch or diffusers; the first job does.
"""

from comic_studio.backends.identity.backend import IdentityBackend

__all__ = ["IdentityBackend"]
