"""What every trainer shares: the loss on a fixed evaluation batch, and the checkpoint's layout.

A trainer keeps the same run state — the step counters, the loss history, the recipe and dataset
manifest (a resume with others is refused), the trained weights and the gradients accumulated so
far, the optimizer, its own random generators, the data order and the global generators — so
:class:`CheckpointedTrainer` writes and restores it once for all of them, under the keys the
trainers have always written (a checkpoint from before this module resumes as it did). What
differs per trainer (where its weights live, a learning-rate schedule, class pictures) are small
hooks. The file format itself is :mod:`comic_studio.training.checkpoint`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from comic_studio.training.checkpoint import capture_global_rngs, load_checkpoint, restore_global_rngs, save_checkpoint
from comic_studio.training.data import DataOrder

EVALUATION_SEED = 1234
EVALUATION_TIMESTEPS = (100, 300, 500, 700, 900)
"""The fixed evaluation batch: every training item at each of these timesteps, noise from
``EVALUATION_SEED``'s generator."""

Item = TypeVar("Item")


def fixed_batch_loss(
    items: Sequence[Item],
    loss: Callable[[Item, Any, Any], Any],
    seed: int = EVALUATION_SEED,
    timesteps: tuple[int, ...] = EVALUATION_TIMESTEPS,
) -> float:
    """The mean of ``loss(item, generator, timesteps_tensor)`` over every item at each of
    ``timesteps``, the noise from one generator seeded with ``seed``, without gradients. Unlike the
    training loss (random timesteps and noise) it is comparable between steps, so it shows whether
    training learns. The items' order and the generator's draws are fixed: the same weights give
    the same number to the bit."""
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for item in items:
            for t in timesteps:
                total += float(loss(item, generator, torch.tensor([t], dtype=torch.long)))
    return total / (len(items) * len(timesteps))


class CheckpointedTrainer:
    """The checkpoint save and resume of a trainer (a mixin: the trainer builds the attributes).

    The trainer sets ``recipe`` (a pydantic model), ``manifest``, ``optimizer``, ``order``,
    ``step`` and ``losses``, one ``torch.Generator`` attribute per name in ``GENERATORS``, and, when
    it accumulates gradients over micro-steps (``ACCUMULATES``), ``micro`` and ``running``. It
    implements :meth:`_weights_state`/:meth:`_load_weights`, and :meth:`_trained_parameters` for
    the gradients kept across a cancel inside an accumulation.
    """

    GENERATORS: ClassVar[tuple[str, ...]] = ("noise_generator", "timestep_generator")
    """The trainer's own generators: attribute names, and the checkpoint's keys."""
    ACCUMULATES: ClassVar[bool] = True
    """Whether the checkpoint holds ``micro``, ``running`` and the accumulated gradients."""
    OTHER_DATA: ClassVar[str] = "other pictures"
    """How the refusal of a checkpoint made on another dataset names it."""

    recipe: Any
    noise_generator: Any
    timestep_generator: Any
    manifest: list[str]
    optimizer: Any
    order: DataOrder
    step: int
    micro: int
    running: float
    losses: list[float]

    def _start_run(self, seed: int, items: int, manifest: list[str]) -> None:
        """A fresh run's state: the generators of ``GENERATORS`` seeded ``seed``, ``seed + 1``, then
        ``seed + 3``, ``seed + 4``… and the data order over ``items`` seeded ``seed + 2`` (the
        offsets the trainers have always used: a run's draws stay what they were), the dataset
        ``manifest``, no steps and no losses."""
        import torch

        offsets = (0, 1, *range(3, 3 + len(self.GENERATORS) - 2))
        for name, offset in zip(self.GENERATORS, offsets, strict=True):
            setattr(self, name, torch.Generator("cpu").manual_seed(seed + offset))
        self.order = DataOrder(items, torch.Generator("cpu").manual_seed(seed + 2))
        self.manifest = manifest
        self.step, self.losses = 0, []
        if self.ACCUMULATES:
            self.micro, self.running = 0, 0.0

    # ------------------------------------------------------------------ the trainer's hooks
    def _weights_state(self) -> dict[str, Any]:
        """The trained weights, under the trainer's own checkpoint key(s)."""
        raise NotImplementedError

    def _load_weights(self, state: dict[str, Any]) -> None:
        """Put the weights of :meth:`_weights_state` back (inside ``torch.no_grad``)."""
        raise NotImplementedError

    def _trained_parameters(self) -> dict[str, Any]:
        """The trained parameters by the name their gradient is kept under."""
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """Anything else the next step depends on (saved after the optimizer)."""
        return {}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_extra_state` (after the optimizer, before the generators)."""

    def _micro_step_loss(self) -> Any:
        """The next micro-step's loss, its draws from the trainer's generators (for
        :meth:`_accumulated_steps`)."""
        raise NotImplementedError

    def _before_optimizer_step(self) -> None:
        """Between the accumulation and the optimizer step (e.g. clip the gradients' norm)."""

    def _check_resumable(self, path: str | Path, state: dict[str, Any]) -> None:
        """Refuse a checkpoint made with other settings or another dataset."""
        from comic_studio.training.lora import TrainingError  # lora imports this module

        if state["recipe"] != self.recipe.model_dump(mode="json"):
            raise TrainingError(f"{path}: the checkpoint was made with other settings; start again or use those")
        if state["manifest"] != self.manifest:
            raise TrainingError(f"{path}: the checkpoint was made with {self.OTHER_DATA}")

    # ------------------------------------------------------------------ save and resume
    def save(self, path: str | Path) -> Path:
        """Write everything the next (micro-)step depends on to ``path`` (atomically)."""
        state: dict[str, Any] = {"step": self.step}
        if self.ACCUMULATES:
            state |= {"micro": self.micro, "running": self.running}
        state |= {"losses": list(self.losses), "recipe": self.recipe.model_dump(mode="json"),
                  "manifest": self.manifest, **self._weights_state()}  # fmt: skip
        if self.ACCUMULATES:
            state["grads"] = {n: p.grad for n, p in self._trained_parameters().items() if p.grad is not None}
        state["optimizer"] = self.optimizer.state_dict()
        state |= self._extra_state()
        state |= {name: getattr(self, name).get_state() for name in self.GENERATORS}
        state |= {"order": self.order.state(), "global_rngs": capture_global_rngs()}
        return save_checkpoint(path, state)

    def resume(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path`` (written by a trainer of the same recipe and
        dataset, in this process or another): the run goes on bit for bit as if never stopped."""
        import torch

        state = load_checkpoint(path)
        self._check_resumable(path, state)
        with torch.no_grad():
            self._load_weights(state)
            if self.ACCUMULATES:
                for name, param in self._trained_parameters().items():
                    grad = state["grads"].get(name)
                    param.grad = None if grad is None else grad.to(param.device, param.dtype).clone()
        self.optimizer.load_state_dict(state["optimizer"])
        self._restore_extra(state)
        for name in self.GENERATORS:
            getattr(self, name).set_state(state[name])
        self.order.restore(state["order"])
        restore_global_rngs(state["global_rngs"])
        self.step = int(state["step"])
        if self.ACCUMULATES:
            self.micro, self.running = int(state["micro"]), float(state["running"])
        self.losses = [float(x) for x in state["losses"]]

    # ------------------------------------------------------------------ the loop
    def _accumulated_steps(
        self, checkpoint: str | Path, cancel: Callable[[], bool], on_progress: Callable[[Any], None] | None
    ) -> None:
        """Optimizer steps until ``recipe.steps``, each the mean of ``recipe.gradient_accumulation``
        micro-steps, writing ``checkpoint`` every ``recipe.checkpoint_every`` steps and at the end;
        ``cancel()`` is asked before every micro-step and, when true, the state is saved there
        (a cancel inside an accumulation keeps its gradients) and ``TrainingCancelled`` raised.
        ``on_progress`` gets a ``TrainingProgress`` after every step (the recipe's learning rate)."""
        from comic_studio.training.lora import TrainingCancelled, TrainingProgress  # lora imports this module

        recipe = self.recipe
        started, first = time.perf_counter(), self.step
        while self.step < recipe.steps:
            while self.micro < recipe.gradient_accumulation:
                if cancel():
                    raise TrainingCancelled(self.save(checkpoint), self.step)
                loss = self._micro_step_loss()
                # A loss that reaches no trained weight has nothing to give back (SerialGen's dropped
                # image condition leaves FBDM/RPIM out of the graph); it still counts in the mean.
                if loss.requires_grad:
                    (loss / recipe.gradient_accumulation).backward()
                self.running += float(loss.detach()) / recipe.gradient_accumulation
                self.micro += 1
            self._before_optimizer_step()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            running, self.running, self.micro = self.running, 0.0, 0
            self.step += 1
            self.losses.append(running)
            if on_progress is not None:
                rate = (self.step - first) / max(time.perf_counter() - started, 1e-9)
                on_progress(TrainingProgress(self.step, recipe.steps, running, recipe.learning_rate, rate,
                                             (recipe.steps - self.step) / rate))  # fmt: skip
            if self.step % recipe.checkpoint_every == 0 or self.step == recipe.steps:
                self.save(checkpoint)
