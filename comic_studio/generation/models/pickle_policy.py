"""Whether pickled weights (``.bin``, ``.ckpt``, ``.pt``, ``.pth``) may be read: the user's choice,
never a project's.

A pickle can run code when it is opened, and even ``torch.load(weights_only=True)`` is a parser of
a hostile format; so pickles are refused unless the user turned on *Allow pickled weights* in the
app's settings (``AppSettings.allow_pickled_weights``) or passed ``--allow-pickle`` to a command
(:func:`allow_pickles_for_this_process`). A project file, a stored request or a panel's backend
settings cannot turn it on: backends ask :func:`pickles_allowed`, not their settings.
"""

from __future__ import annotations

from pathlib import Path

from comic_studio.generation.models.loading import PICKLE_SUFFIXES

HOW_TO_ALLOW = (
    "turn on 'Allow pickled weights' in Edit → Preferences (or pass --allow-pickle to the command); "
    "they are then read with weights_only=True"
)
"""What a refusal tells the user to do, besides finding a .safetensors version."""

_process_choice: bool | None = None


def allow_pickles_for_this_process(allowed: bool | None) -> None:
    """The ``--allow-pickle`` flag of a command (``None``: back to the app setting)."""
    global _process_choice
    _process_choice = allowed


def pickles_allowed() -> bool:
    """The user's choice: this process's flag when set, else the saved app setting (read each time,
    so a change in Preferences applies to the next job)."""
    if _process_choice is not None:
        return _process_choice
    from comic_studio.core.settings import load_settings

    settings, _problem = load_settings()
    return settings.allow_pickled_weights


def refusal(path: Path, what: str) -> str:
    """The message for a pickled file ``path`` refused while loading ``what``."""
    return (
        f"{path}: the {what} is a pickled {path.suffix} file, which can run code when opened; refused. "
        f"Use a .safetensors version, or {HOW_TO_ALLOW}."
    )


def folder_uses_safetensors(folder: Path, what: str) -> bool:
    """For a ``from_pretrained`` folder: ``True`` when its weights are ``.safetensors`` (load only
    those); ``False`` when it has only pickled weights and the user allows them. Raises
    :class:`ValueError` with :func:`refusal`'s message when it has only pickles and the user does
    not allow them (the caller folds it into its own error)."""
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if any(p.suffix == ".safetensors" for p in files):
        return True
    pickles = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles and not pickles_allowed():
        raise ValueError(refusal(pickles[0], what))
    return not pickles
