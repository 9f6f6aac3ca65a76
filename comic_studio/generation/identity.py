"""The names of StableIdentity's learned tokens, shared by the trainer and the ``identity`` backend.

One function gives the token pair of the k-th identity of a job, and both sides take it from here:
the token that is trained is the token that is substituted. (The public SDXL port trained its
signal word as ``v1*`` and prompted ``*v1``, so its prompts never reached the learned rows.)
"""

from __future__ import annotations


def identity_tokens(index: int) -> tuple[str, str]:
    """The two placeholder tokens of the ``index``-th identity of a job."""
    return (f"<identity-{index}-a>", f"<identity-{index}-b>")


def identity_phrase(index: int) -> str:
    """The prompt text that stands for identity ``index``: its two tokens, side by side."""
    return " ".join(identity_tokens(index))
