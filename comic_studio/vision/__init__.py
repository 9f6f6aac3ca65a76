"""Offline computer vision helpers (no Qt): face and body crop suggestions."""

from comic_studio.vision.detect import available_detectors, suggest_body, suggest_face

__all__ = ["available_detectors", "suggest_body", "suggest_face"]
