"""The ``racig`` backend (RaCig: retrieval-augmented, multi-character consistent panels).

Pose retrieval and assignment → OpenPose ControlNet → face (Plus-Face) and outfit (Plus) IP-Adapters
under per-character head/body masks, one UNet pass; plus try-on. Register as
``racig = "comic_studio.backends.racig:RacigBackend"``. Importing this package does not import
torch or diffusers; the first job does.
"""

from comic_studio.backends.racig.backend import RacigBackend
from comic_studio.backends.racig.serialgen import SerialgenBackend

__all__ = ["RacigBackend", "SerialgenBackend"]
