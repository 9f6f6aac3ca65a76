"""Personalization training: the trainers StoryBooth, StableIdentity, AnimeAdapter and SerialGen
need, on the shared pieces here (timestep laws, checkpoints that resume bit for bit, LoRA export).

Imports torch lazily; sits beside ``backends`` (it loads the same SDXL components through
``generation.models``) and knows no concrete backend.
"""
