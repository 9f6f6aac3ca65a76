"""Identity-anchor jobs of the render queue: generate / regenerate a character's anchor, and rebuild
missing banks before the consistent panels that need them.

The requests and the recording are :mod:`comic_studio.workflows.anchors` and
:mod:`comic_studio.workflows.banks` (shared with the CLI); this part only follows the jobs on the
GUI thread. Anchor jobs go through the RenderService like panel jobs (the queue shows them as
"Anchor: NAME"). A panel whose characters' banks are neither in the bank folder nor in the project
waits, unqueued, until the rebuild jobs of those characters have finished, then is queued with the
(possibly re-recorded) banks. A "regenerate same seed" of a stored request waits the same way when
a bank it names is its character's current anchor bank, and is refused with the reason when the
bank belonged to an older anchor.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character, Panel
from comic_studio.core.settings import bank_dir
from comic_studio.generation.request import GenerationRequest
from comic_studio.ui.background import BackgroundJobs
from comic_studio.workflows import anchors, banks

if TYPE_CHECKING:
    from comic_studio.ui.render_service import RenderJob, RenderService

ANCHOR_PRIORITY = 20
"""Anchor jobs run before queued panels: panels of that character are usually what comes next."""


class AnchorJobs:
    """The anchor side of one :class:`RenderService`."""

    def __init__(self, service: RenderService):
        self.service = service
        self._bank_reads = BackgroundJobs(service, "anchor-banks")
        self._waiting: dict[tuple[str, str | None], tuple[int, set[str]]] = {}
        """(panel id, result id of a "regenerate same seed", or None for a render) → (priority,
        characters whose bank is being rebuilt for it)."""
        self._rebuilt: dict[str, str] = {}
        """bank hash → the different bank its rebuild produced here (what a replay of a request that
        names the first one uses instead)."""

    @property
    def ctx(self) -> Any:
        return self.service.ctx

    # ------------------------------------------------------------------ queries
    def job_for(self, character_id: str) -> RenderJob | None:
        """The character's anchor job that is queued or running (None when there is none)."""
        return next((j for j in self.service.jobs() if j.anchor_for == character_id and j.active), None)

    def state(self, character_id: str) -> str:
        """What the character library shows: "generating", "rebuilding", "ready" or "none"."""
        job = self.job_for(character_id)
        if job is not None:
            return "rebuilding" if job.expected_bank else "generating"
        character = self.ctx.document.project.character(character_id)
        return "ready" if character is not None and character.anchor is not None else "none"

    def waiting_panels(self) -> list[str]:
        return list(dict.fromkeys(panel_id for panel_id, _result in self._waiting))

    # ------------------------------------------------------------------ submitting
    def render(self, character_id: str, picture: str | None = None, priority: int = ANCHOR_PRIORITY) -> str | None:
        """Queue ``character_id``'s anchor job: from its solo prompt (a character that already has an
        anchor gets a new anchor seed: regenerating means another look), or from ``picture`` (an
        asset hash, e.g. a panel result). Returns the job id, or None with the reason in ctx.message."""
        document = self.ctx.document
        character = document.project.character(character_id)
        if character is None:
            self.ctx.message.emit(f"character {character_id!r} does not exist")
            return None
        if self.job_for(character_id) is not None:
            self.ctx.message.emit(f"{character.name}'s anchor is already being made")
            return None
        settings = (
            {"anchor_seed": random.randrange(2**31)} if character.anchor is not None and picture is None else None
        )
        try:
            request = anchors.anchor_request(document.project, character_id, document.assets, picture, settings,
                                             folder=bank_dir())  # fmt: skip
        except ComicStudioError as exc:
            self.ctx.message.emit(f"Anchor: {character.name}: {exc}")
            return None
        return self._submit(request, character, priority, None)

    def _rebuild(self, character: Character) -> str | None:
        document = self.ctx.document
        assert character.anchor is not None
        try:
            request = anchors.rebuild_request(document.project, document.assets, character.id, bank_dir())
        except ComicStudioError as exc:
            self.ctx.message.emit(f"Anchor: {character.name}: {exc}")
            return None
        return self._submit(request, character, ANCHOR_PRIORITY, character.anchor.bank)

    def _submit(
        self, request: GenerationRequest, character: Character, priority: int, expected_bank: str | None
    ) -> str | None:
        label = f"Anchor: {character.name}" + (" (rebuilding)" if expected_bank else "")
        job_id = self.service._submit(request, priority, label, "")
        if job_id is None:
            self.ctx.message.emit(self.service._last_problem)
            return None
        job = self.service.job(job_id)
        job.anchor_for, job.expected_bank = character.id, expected_bank
        self.service.jobs_changed.emit()
        return job_id

    def defer_panel(self, panel: Panel, priority: int) -> bool:
        """Before a panel job: write the banks the project carries into the bank folder; start
        rebuilds of those it does not carry. True when the panel must wait for them (it is queued
        by :meth:`job_over` once they are done)."""
        if (panel.id, None) in self._waiting:
            return True
        document = self.ctx.document
        backend = panel.backend or document.project.default_backend
        if not banks.uses_identity_banks(backend):
            return False
        present = [p.character_id for p in panel.characters]
        try:
            missing = banks.ensure_banks(backend, document.project, document.assets, bank_dir(), present)
        except ComicStudioError as exc:
            self.ctx.message.emit(str(exc))
            return False  # the panel job runs and reports the missing bank itself
        waiting = self._start_rebuilds(missing)
        if not waiting:
            return False
        self._wait((panel.id, None), priority, waiting, self.service.panel_label(panel.id))
        return True

    def replay(
        self, panel_id: str, result_id: str, request: GenerationRequest, priority: int
    ) -> GenerationRequest | None:
        """Before a "regenerate same seed" of ``result_id``'s stored request (hydrated): the request
        ready to submit, or None when it waits for the rebuild of a current anchor's missing bank (it
        is submitted by :meth:`job_over` once that is done) or cannot run because a bank it names is
        gone for good (the reason goes to ``ctx.message``)."""
        if not banks.uses_identity_banks(request.backend):
            return request
        key = (panel_id, result_id)
        if key in self._waiting:
            self.ctx.message.emit(
                f"{self.service.panel_label(panel_id)} (same seed) already waits for an identity bank"
            )
            return None
        try:
            request, missing = banks.replay_banks(self.ctx.document.project, request, self._rebuilt)
        except ComicStudioError as exc:
            self.ctx.message.emit(f"Cannot regenerate this result: {exc}")
            return None
        if not missing:
            return request
        waiting = self._start_rebuilds(missing)
        if waiting != set(missing):
            return None  # a rebuild could not start: _rebuild said why, and the replay could only fail
        self._wait(key, priority, waiting, self.service.panel_label(panel_id) + " (same seed)")
        return None

    def _start_rebuilds(self, character_ids: list[str]) -> set[str]:
        """Rebuild jobs for these characters' missing banks (joining one already queued); returns the
        characters whose bank is on its way."""
        waiting = set()
        for character_id in character_ids:
            character = self.ctx.document.project.character(character_id)
            if self.job_for(character_id) is not None or self._rebuild(character) is not None:
                waiting.add(character_id)
        return waiting

    def _wait(self, key: tuple[str, str | None], priority: int, waiting: set[str], label: str) -> None:
        self._waiting[key] = (priority, waiting)
        names = ", ".join(sorted(self.ctx.document.project.character(c).name for c in waiting))
        self.ctx.message.emit(f"{label} waits for the identity bank of {names} to be rebuilt")

    # ------------------------------------------------------------------ results (GUI thread)
    def record(self, job: RenderJob, msg: Any) -> None:
        """A finished anchor job: read its bank file on a helper thread (its size, and its bytes
        hashed when the project will keep them: a bank can be GBs), then record the anchor (or the
        rebuilt bank) on the GUI thread and queue the panels that waited for it."""
        character_id = job.anchor_for
        character = self.ctx.document.project.character(character_id) if job.document is self.ctx.document else None
        if character is None:
            self.job_over(character_id, False)
            return
        folder = msg.request.backend_settings.get(banks.BANK_FOLDER_SETTING, "")
        self._bank_reads.submit(
            anchors.job_bank,
            msg.result,
            folder,
            character.model_copy(),  # a snapshot: the helper thread never touches the live project
            on_result=lambda bank: self._record(job, msg, folder, bank),
            on_error=lambda error: self._record(job, msg, folder, None, error),
        )

    def pending(self) -> int:
        """Finished anchor jobs whose bank is still being read (the service is not idle meanwhile)."""
        return self._bank_reads.pending()

    def shutdown(self) -> None:
        self._bank_reads.shutdown(wait=True)

    def _record(
        self, job: RenderJob, msg: Any, folder: str, bank: anchors.JobBank | None, error: BaseException | None = None
    ) -> None:
        character_id = job.anchor_for
        ok = False
        if job.document is self.ctx.document and self.ctx.document.project.character(character_id) is not None:
            if error is not None:
                self.ctx.message.emit(str(error))
            elif job.expected_bank:
                notice = self.ctx.edit(
                    anchors.record_rebuild, character_id, msg.result, folder, job.expected_bank, bank=bank
                )
                if notice:
                    self.ctx.message.emit(notice)
                    anchor = self.ctx.document.project.character(character_id).anchor
                    if anchor is not None and anchor.bank != job.expected_bank:
                        self._rebuilt[job.expected_bank] = anchor.bank
                ok = True
            else:
                recorded = self.ctx.edit(
                    anchors.record_anchor, character_id, msg.request, msg.result, folder, msg.png, bank=bank
                )
                ok = recorded is not None
        self.job_over(character_id, ok)
        if self.service.is_idle():  # the read was the last thing the service waited for
            self.service.idle.emit()

    def job_over(self, character_id: str, ok: bool) -> None:
        """Release the panels that waited for ``character_id``'s bank (dropped, with a message,
        when the job failed or was cancelled)."""
        ready, dropped = [], []
        for key, (priority, waiting) in list(self._waiting.items()):
            if character_id not in waiting:
                continue
            waiting.discard(character_id)
            if not ok:
                dropped.append(key)
                del self._waiting[key]
            elif not waiting:
                ready.append((key, priority))
                del self._waiting[key]
        if dropped:
            self.ctx.message.emit(
                f"{len(dropped)} panel(s) not rendered: an identity bank they need could not be rebuilt"
            )
        for (panel_id, result_id), priority in ready:
            if result_id is None:
                self.service.render_panels([panel_id], priority)
            else:  # checks the banks again: now in the bank folder (or rebuilt differently, see record)
                self.service.regenerate(panel_id, result_id, priority)

    def clear(self) -> None:
        self._waiting.clear()


__all__ = ["ANCHOR_PRIORITY", "AnchorJobs"]
