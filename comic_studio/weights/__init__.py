"""Model weights on this machine, independent of what runs them: the catalogue
(comic_studio/resources/models.json), locating installed models (the app's models folder, the Hugging Face cache,
a ComfyUI/A1111 tree), what a backend or parser needs and whether it is installed, and verified
downloads (``download``), the record of what they installed (``lock``) and the pins made from it
(``pinning``).

Pure Python: no torch, no Qt. The engine, the story parser and the pose retriever all use it;
loading weights into a model is :mod:`comic_studio.generation.models`' job. Import the submodules
directly; this package imports nothing.
"""
