"""The document model and everything headless about a comic: no Qt, no torch (a test enforces it)."""
