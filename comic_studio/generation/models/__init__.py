"""The model manager: catalogue (resources/models.json), locating installed models, downloads, and
loading weights (diffusers folders, single-file checkpoints, LoRAs) without ever unpickling unsafely.

Import the submodules directly; this package imports nothing heavy."""
