"""The ``anime`` backend (AnimeAdapter, seed 003: appearance-consistent anime characters from one
reference each, on SD 1.5). Register as ``anime = "comic_studio.backends.anime:AnimeBackend"``.
Importing this package does not import torch or diffusers; the first job does."""

from comic_studio.backends.anime.backend import AnimeBackend

__all__ = ["AnimeBackend"]
