"""What sits between the document and the engine: the authoring loop without a window.

The CLI and the desktop app share these modules, one concern each:

- :mod:`.story`: story text → laid-out document.
- :mod:`.requests`: a panel → the :class:`~comic_studio.generation.request.GenerationRequest` a
  backend runs, and the ``asset:`` scheme that keeps stored requests small (hydrate / dehydrate).
- :mod:`.results`: a generated image → the panel's history.
- :mod:`.lettering`: a beat's dialogue and caption → the panel's balloons.
- :mod:`.banks`: identity banks of consistent-character backends (naming, writing, checking them).
- :mod:`.anchors`: anchor jobs that make those banks, and rebuilding missing ones.
- :mod:`.tryon`: give a panel's character another outfit.
- :mod:`.batch`: headless runs: render a panel or a document, export, ``render``, ``demo``.

Every change to a document goes through commands, so what the app does with them is undoable.
Backends are reached through the registry (by name or capability), never imported.
"""
