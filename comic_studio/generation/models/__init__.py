"""Loading SDXL-family weights (diffusers folders, single-file checkpoints, LoRAs) without ever
unpickling unsafely, and resolving a backend's model settings to files (:mod:`.sdxl`). What is
installed where is :mod:`comic_studio.weights`.

Import the submodules directly; this package imports nothing heavy."""
