"""The character library dock: character cards, the add/edit dialog, reference images, the crop
tool with offline face/body suggestions, and import/export of libraries."""

from comic_studio.ui.characters.library import CharacterLibrary

__all__ = ["CharacterLibrary"]
