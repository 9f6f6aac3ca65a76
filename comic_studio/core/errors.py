"""The project's exception tree. Every message names the file or field and says what to do."""

from __future__ import annotations

from pathlib import Path


class ComicStudioError(Exception):
    """Root of every error comic_studio raises on purpose (the CLI and UI show its message)."""


class ProjectFileError(ComicStudioError):
    """A ``.comic`` file cannot be read or written. The user's file is never modified."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class AssetError(ComicStudioError):
    """An asset (usually an image) is missing, too large, or not what it claims to be."""


class LayoutError(ComicStudioError):
    """A layout operation is impossible (e.g. merging panels that are not neighbours)."""


class ExportError(ComicStudioError):
    """An export failed; the partial output is removed."""


class CommandError(ComicStudioError):
    """A command refers to an object that does not exist or cannot be applied."""
