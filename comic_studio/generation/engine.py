"""The generation engine: one worker thread that owns the GPU, a priority queue, cancel, messages.

No Qt here. The app wraps an :class:`Engine` in :class:`comic_studio.ui.engine_bridge.EngineBridge`
to receive the messages on the GUI thread; the CLI and tests subscribe directly.

Why one thread: CUDA contexts, model caches and attention-processor state are not safe to share
between concurrent jobs, and one job at a time already saturates a GPU. Backend instances are created
on that thread (one per backend name, cached), so a backend may keep loaded models between jobs.

Cancel is cooperative (the backend's ``on_step`` answers ``False``), but a backend that never
reports a step, or hangs, cannot hold the engine: a watchdog gives it ``cancel_grace_s`` after the
cancel, then reports the job CANCELLED with a message naming the backend, abandons that worker
thread (a daemon; whatever it returns later is discarded) and continues on a fresh worker. With a
``stall_timeout_s`` (off by default), a job that reports no step for that long is stopped the same
way and reported as an ERROR.

Task jobs (:mod:`comic_studio.generation.tasks`): besides renders, the engine runs jobs of kinds a
higher layer registered a runner for (:meth:`Engine.register_runner`; training a character's LoRA
is one), in the same queue, one at a time on the same worker. A task that needs the device's
memory (training does) gets it: the engine closes its backends and drops its cached models first;
the next render loads them again. A render queued while a task runs *waits* for it (it never runs
in between): see :meth:`Engine._execute_task` for why.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from comic_studio.core.native_libs import preload_torch_stack
from comic_studio.generation.backend_api import BackendSettingsError, GenerationBackend
from comic_studio.generation.messages import RENDER, JobEvent, JobMessage, Subscriber, Subscribers
from comic_studio.generation.registry import get_backend_class
from comic_studio.generation.request import (
    Cancelled,
    GenerationError,
    GenerationRequest,
    GenerationResult,
    result_png,
)
from comic_studio.generation.resources import EngineResources
from comic_studio.generation.settings import EngineSettings
from comic_studio.generation.tasks import TaskContext, TaskRequest, TaskRunner

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


DEFAULT_CANCEL_GRACE_S = 10.0
"""Seconds a backend has to stop after a cancel before its worker thread is abandoned."""

OOM_COLLECTION_WAIT_S = 10.0
"""Seconds an out-of-memory retry waits for the freed models' cycles to be collected (by the GUI
thread in the app, core/garbage.py) before it tries again anyway."""

PROGRESS_INTERVAL = 0.02
"""Seconds between PROGRESS messages without a preview: a backend reporting thousands of tiny steps
must not flood the GUI thread (the first and last step and every preview are always sent)."""


class OutOfMemory(GenerationError):
    """The device ran out of memory even after freeing the cache and retrying in a leaner mode."""


@dataclass(eq=False)
class _Job:
    id: str
    request: GenerationRequest | TaskRequest
    priority: int
    seq: int
    cancel_requested: bool = False
    announced: bool = False
    """QUEUED has been sent; only then may the worker start it."""
    started_at: float = 0.0
    first_step: tuple[float, int] | None = None
    last_progress_at: float = 0.0
    in_backend: bool = False
    """The backend is being created or is generating (only then can the job be abandoned)."""
    watchdog: threading.Timer | None = None
    stall_timer: threading.Timer | None = None
    last_activity: float = 0.0
    """When the job started or last reported a step (the stall time-out counts from it)."""
    stalled: str = ""
    """Why the engine stopped a job nobody cancelled (the stall time-out), for its ERROR message."""
    abandoned: bool = False
    """The backend did not stop in time after a cancel: its thread's outcome is discarded."""

    def sort_key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)  # higher priority first, FIFO within a priority

    @property
    def render(self) -> GenerationRequest | None:
        """The render request, or None for a task job."""
        return self.request if isinstance(self.request, GenerationRequest) else None

    @property
    def kind(self) -> str:
        return RENDER if self.render is not None else str(self.request.kind)  # type: ignore[union-attr]

    @property
    def panel_id(self) -> str | None:
        return self.render.panel_id if self.render is not None else None

    @property
    def doer(self) -> str:
        """Who runs it, for messages: "backend 'sdxl'" or "task 'train-lora'"."""
        return f"backend {self.render.backend!r}" if self.render is not None else f"task {self.kind!r}"


class Engine:
    """Runs generation jobs one at a time on a worker thread (see the module docstring)."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        name: str = "comic-studio-engine",
        cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S,
        stall_timeout_s: float | None = None,
    ):
        """``cancel_grace_s``: how long a backend has to stop after a cancel before its thread is
        abandoned. ``stall_timeout_s``: stop a job whose backend reports no step for that long
        (``None``: never; model loading before the first step counts, so allow for it)."""
        if not cancel_grace_s > 0:
            raise ValueError(f"cancel_grace_s must be positive, got {cancel_grace_s!r}")
        if stall_timeout_s is not None and not stall_timeout_s > 0:
            raise ValueError(f"stall_timeout_s must be positive or None, got {stall_timeout_s!r}")
        self.cancel_grace_s = float(cancel_grace_s)
        self.stall_timeout_s = None if stall_timeout_s is None else float(stall_timeout_s)
        self.resources = EngineResources(settings)
        self._cond = threading.Condition()
        self._queued: dict[str, _Job] = {}
        self._running: _Job | None = None
        self._seq = itertools.count()
        self._stopping = False
        self._pending_settings: EngineSettings | None = None
        self._subscribers = Subscribers("engine")
        self._backends: dict[str, GenerationBackend] = {}
        self._runners: dict[str, TaskRunner] = {}
        self._name = name
        self._epoch = 0
        """Which worker is current: an abandoned one sees a newer epoch and leaves."""
        self._worker_done = False
        self._thread = self._start_worker()

    # ------------------------------------------------------------------ public API

    def register_runner(self, kind: str, runner: TaskRunner) -> None:
        """Run task requests of ``kind`` with ``runner`` (see :mod:`comic_studio.generation.tasks`).
        Registering the same runner again is a no-op; another runner replaces it for later jobs."""
        if not kind or kind == RENDER:
            raise ValueError(f"a task kind must be a non-empty name other than {RENDER!r}, got {kind!r}")
        with self._cond:
            self._runners[kind] = runner

    def submit(self, request: GenerationRequest | TaskRequest, priority: int = 0) -> str:
        """Queue ``request`` (a render, or a task of a registered kind); returns its job id. Bad
        input raises here, synchronously: :class:`GenerationError` (unknown backend or task kind,
        not a request, engine shut down) or :class:`BackendSettingsError` (naming the bad setting)."""
        if isinstance(request, GenerationRequest):
            request = self._validated(request)
        elif isinstance(request, TaskRequest):
            with self._cond:
                if request.kind not in self._runners:
                    raise GenerationError(f"no runner is registered for {request.kind!r} jobs")
        else:
            raise GenerationError(f"submit() needs a GenerationRequest or a task request, got {type(request).__name__}")
        job = _Job(uuid.uuid4().hex[:12], request, int(priority), next(self._seq))
        with self._cond:
            if self._stopping:
                raise GenerationError("the generation engine has been shut down")
            self._queued[job.id] = job  # visible to cancel()/pending() at once, not yet runnable
        # QUEUED goes out before the job may start, so no subscriber ever sees STARTED first.
        render = job.render
        self._emit(JobMessage(job.id, JobEvent.QUEUED, job.panel_id, request=render, kind=job.kind,
                              task=None if render is not None else request))  # fmt: skip
        with self._cond:
            job.announced = True
            dropped = job.cancel_requested  # cancelled while QUEUED was going out
            self._cond.notify_all()
        if dropped:
            self._emit(JobMessage(job.id, JobEvent.CANCELLED, job.panel_id, kind=job.kind))
        return job.id

    def cancel(self, job_id: str) -> bool:
        """Drop a queued job (CANCELLED now) or stop the running one within one step. ``False`` when
        the job is unknown or already over."""
        with self._cond:
            job = self._queued.pop(job_id, None)
            if job is None:
                if self._running is not None and self._running.id == job_id:
                    self._stop_running()
                    return True
                return False
            doomed = self._drop_queued([job])
        self._emit_cancelled(doomed)
        return True

    def cancel_all(self) -> None:
        """Cancel every queued job and the running one."""
        with self._cond:
            doomed = self._drop_queued(sorted(self._queued.values(), key=_Job.sort_key))
            self._queued.clear()
            self._stop_running()
        self._emit_cancelled(doomed)

    def reprioritize(self, job_id: str, priority: int) -> bool:
        """Change a queued job's priority (e.g. the panel the user is looking at). ``False`` when the
        job is not queued any more."""
        with self._cond:
            job = self._queued.get(job_id)
            if job is None:
                return False
            job.priority = int(priority)
            return True

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive every :class:`JobMessage`. Callbacks run on the worker thread (QUEUED, and
        CANCELLED of queued jobs, on the calling thread): keep them short and thread-safe.
        Returns a function that unsubscribes."""
        return self._subscribers.add(callback)

    def pending(self) -> list[str]:
        """Queued job ids in the order they will run (the running job is not included)."""
        with self._cond:
            return [job.id for job in sorted(self._queued.values(), key=_Job.sort_key)]

    def running(self) -> str | None:
        """The id of the job running now, if any."""
        with self._cond:
            return self._running.id if self._running is not None else None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (CLI, tests). ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queued or self._running is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def set_settings(self, settings: EngineSettings) -> None:
        """New device/dtype/memory preferences, applied before the next job starts (never mid-job)."""
        with self._cond:
            self._pending_settings = settings

    @property
    def settings(self) -> EngineSettings:
        return self.resources.settings

    def shutdown(self, wait: bool = True) -> None:
        """Cancel everything, stop the worker and (``wait``) join it. Idempotent."""
        with self._cond:
            self._stopping = True
            doomed = self._drop_queued(sorted(self._queued.values(), key=_Job.sort_key))
            self._queued.clear()
            self._stop_running()
            self._cond.notify_all()
        self._emit_cancelled(doomed)
        if wait and threading.current_thread() is not self._thread:
            # Bounded: a stuck backend is abandoned after the grace period and a fresh worker closes up.
            with self._cond:
                while not self._worker_done:
                    self._cond.wait()
                thread = self._thread
            thread.join()

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @staticmethod
    def _drop_queued(jobs: list[_Job]) -> list[_Job]:
        """Mark removed jobs cancelled (call under the lock); returns those whose CANCELLED message
        is ours to send. A job whose QUEUED is still going out gets its CANCELLED from submit(),
        after the QUEUED, so the order holds."""
        for job in jobs:
            job.cancel_requested = True
        return [job for job in jobs if job.announced]

    def _emit_cancelled(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._emit(JobMessage(job.id, JobEvent.CANCELLED, job.panel_id, kind=job.kind))

    # ------------------------------------------------------------------ validation (caller thread)

    @staticmethod
    def _validated(request: GenerationRequest) -> GenerationRequest:
        cls = get_backend_class(request.backend)  # BackendNotFoundError is a GenerationError
        # validate_settings reads only class-level data (name, schema), so a bare instance checks the
        # settings here without running the backend's __init__ off the worker thread.
        checker = cls.__new__(cls)
        settings = cls.validate_settings(checker, request.backend_settings)
        return request.model_copy(update={"backend_settings": settings})

    # ------------------------------------------------------------------ the worker

    def _start_worker(self) -> threading.Thread:
        # Daemon: a crashed app must not hang on exit; an orderly exit calls shutdown() and joins.
        thread = threading.Thread(target=self._work, args=(self._epoch,), name=self._name, daemon=True)
        thread.start()
        return thread

    def _stop_running(self) -> None:
        """Ask the running job to stop and arm its watchdog (call under the lock)."""
        job = self._running
        if job is None:
            return
        job.cancel_requested = True
        if job.watchdog is None:
            # A task may need longer than a render to reach a safe stop (a training run cannot stop
            # while it loads its base model, and saves a checkpoint before it stops): it says how long.
            grace = max(self.cancel_grace_s, float(getattr(job.request, "cancel_grace_s", 0.0) or 0.0))
            job.watchdog = threading.Timer(grace, self._abandon_if_stuck, args=(job,))
            job.watchdog.name = f"{self._name}-cancel-watchdog"
            job.watchdog.daemon = True
            job.watchdog.start()

    def _arm_stall_check(self, job: _Job, delay: float) -> None:
        job.stall_timer = threading.Timer(delay, self._stop_if_stalled, args=(job,))
        job.stall_timer.name = f"{self._name}-stall-watchdog"
        job.stall_timer.daemon = True
        job.stall_timer.start()

    def _stop_if_stalled(self, job: _Job) -> None:
        """The stall watchdog: stop ``job`` if it reported no step for ``stall_timeout_s``, else look
        again when it would have."""
        timeout = self.stall_timeout_s
        assert timeout is not None
        with self._cond:
            if self._running is not job or job.cancel_requested:
                return
            idle = time.monotonic() - job.last_activity
            if idle < timeout:
                self._arm_stall_check(job, timeout - idle)
                return
            job.stalled = f"{job.doer} reported no step for {timeout:g} s (the stall time-out)"
            log.warning("job %s: %s; stopping it", job.id, job.stalled)
            self._stop_running()

    def _abandon_if_stuck(self, job: _Job) -> None:
        """The watchdog: ``job`` was cancelled ``cancel_grace_s`` ago. If its backend still has not
        returned, report the job over and move the engine to a fresh worker thread."""
        with self._cond:
            if self._running is not job or not job.in_backend:
                return
            job.abandoned = True
            self._running = None
            # The stuck instance may still be running on the old thread: never hand it another job.
            if job.render is not None:
                self._backends.pop(job.render.backend, None)
            self._epoch += 1
            self._thread = self._start_worker()
            self._cond.notify_all()
        grace = max(self.cancel_grace_s, float(getattr(job.request, "cancel_grace_s", 0.0) or 0.0))
        message = (f"{job.doer} did not stop within {grace:g} s of cancel; its "
                   "thread is abandoned and the engine continues on a fresh worker")  # fmt: skip
        log.warning("job %s: %s", job.id, message)
        if job.stalled:
            self._emit(JobMessage(job.id, JobEvent.ERROR, job.panel_id, error=f"{job.stalled}; {message}",
                                  elapsed=self._elapsed(job), kind=job.kind))  # fmt: skip
            return
        self._emit(JobMessage(job.id, JobEvent.CANCELLED, job.panel_id, error=message,
                              elapsed=self._elapsed(job), kind=job.kind))  # fmt: skip

    def _work(self, epoch: int) -> None:
        while True:
            with self._cond:
                while (
                    not self._stopping and epoch == self._epoch and not any(j.announced for j in self._queued.values())
                ):
                    self._cond.wait()
                if epoch != self._epoch:
                    return  # abandoned while it waited (cannot happen today; cheap to be sure)
                if self._stopping:
                    break
                job = min((j for j in self._queued.values() if j.announced), key=_Job.sort_key)
                del self._queued[job.id]
                self._running = job
                settings, self._pending_settings = self._pending_settings, None
            try:
                if settings is not None:
                    self.resources.set_settings(settings)
                if job.render is not None:
                    self._execute(job)
                else:
                    self._execute_task(job)
            except BaseException as exc:  # the worker must outlive anything a job does
                # An abandoned job's CANCELLED went out already (and the finally ends this thread).
                if not job.abandoned:
                    log.exception("generation worker: unexpected failure around job %s", job.id)
                    # _execute sends every final message itself; reaching here means it could not.
                    self._emit(JobMessage(job.id, JobEvent.ERROR, job.panel_id,
                                          error=f"internal engine error: {type(exc).__name__}: {exc}",
                                          detail=traceback.format_exc(), kind=job.kind))  # fmt: skip
            finally:
                with self._cond:
                    for timer in (job.watchdog, job.stall_timer):
                        if timer is not None:
                            timer.cancel()
                    if not job.abandoned:
                        self._running = None
                        self._cond.notify_all()
            if job.abandoned:
                log.warning("job %s: the abandoned %s returned at last; its outcome is discarded",
                            job.id, job.doer)  # fmt: skip
                return  # this thread is no longer the engine's worker
        try:
            self._close_backends()
        finally:  # shutdown() waits for this, whatever closing the backends did
            with self._cond:
                self._worker_done = True
                self._cond.notify_all()

    def _execute(self, job: _Job) -> None:
        request = job.render
        assert request is not None
        job.started_at = job.last_activity = time.monotonic()
        self._emit(JobMessage(job.id, JobEvent.STARTED, request.panel_id))
        try:
            with self._cond:
                if job.cancel_requested:  # while STARTED went out: the watchdog may have looked already
                    raise Cancelled(f"job {job.id} was cancelled")
                job.in_backend = True
                if self.stall_timeout_s is not None:
                    self._arm_stall_check(job, self.stall_timeout_s)
            try:
                backend = self._backend(request.backend, job)
                result = self._generate(backend, job)
            finally:
                with self._cond:
                    job.in_backend = False
            if job.abandoned:
                return  # reported CANCELLED by the watchdog; the late result is discarded
            if job.cancel_requested:  # the backend ignored the stop request and finished anyway
                raise Cancelled(f"job {job.id} was cancelled")
            # Checked here, on the worker, against the project loader's limits: an image the
            # project could not keep is an error of this job, not a failure when it is recorded.
            png = result_png(result, backend=request.backend, panel=_panel_name(request))
        except Cancelled:
            if job.abandoned:
                return
            self._end_job(backend_name=request.backend)
            if job.stalled:
                self._emit(JobMessage(job.id, JobEvent.ERROR, request.panel_id, error=job.stalled,
                                      elapsed=self._elapsed(job)))  # fmt: skip
                return
            self._emit(JobMessage(job.id, JobEvent.CANCELLED, request.panel_id, elapsed=self._elapsed(job)))
            return
        except Exception as exc:
            if job.abandoned:
                return
            detail = traceback.format_exc()
            log.warning("generation job %s (%s) failed:\n%s", job.id, request.backend, detail)
            self._end_job(backend_name=request.backend)
            self._emit(JobMessage(job.id, JobEvent.ERROR, request.panel_id, error=_user_message(request.backend, exc),
                                  detail=detail, elapsed=self._elapsed(job)))  # fmt: skip
            return
        self._emit(JobMessage(job.id, JobEvent.FINISHED, request.panel_id, result=result, png=png,
                              request=request, elapsed=self._elapsed(job)))  # fmt: skip

    def _generate(self, backend: GenerationBackend, job: _Job) -> GenerationResult:
        request = job.render
        assert request is not None
        on_step = self._step_callback(job)
        retried = False
        while True:
            try:
                return backend.generate(request, on_step)
            except Exception as exc:
                if not _is_out_of_memory(exc) or job.abandoned:
                    raise
                mode = self.resources.memory_mode_for(backend)
                # Stays lowered: the next job would fail the same way. Each out-of-memory error steps one
                # mode leaner, down to layer-by-layer offload (issue 15: a job that does not fit whole-model
                # offload on a small card still renders, slowly, instead of failing after one retry).
                lower = self.resources.lower_after_oom(backend)
                self.resources.free(wait_s=OOM_COLLECTION_WAIT_S)
                if lower is None:
                    raise OutOfMemory(_oom_message(mode, retried=retried)) from exc
                log.warning("job %s ran out of memory in %r mode; freed the cache, retrying in %r", job.id, mode, lower)
            if job.cancel_requested:
                raise Cancelled(f"job {job.id} was cancelled")
            job.first_step = None  # the rate of the failed attempt says nothing about the retry
            retried = True

    def _step_callback(self, job: _Job) -> Callable[[int, int, Image.Image | None], bool]:
        def on_step(step: int, total: int, preview: Image.Image | None = None) -> bool:
            if job.cancel_requested:
                return False
            self._progress(job, step, total, preview=preview)
            return not job.cancel_requested

        return on_step

    def _progress(self, job: _Job, step: int, total: int, *, preview: Image.Image | None = None,
                  info: dict[str, float] | None = None, eta: float | None = None) -> None:  # fmt: skip
        """Send a PROGRESS message when it is due (the first and last step, a preview, or
        :data:`PROGRESS_INTERVAL` after the last one; every step of a task job: a training step is
        a whole gradient accumulation, a few per second at most, and its loss plot needs each)."""
        now = job.last_activity = time.monotonic()
        if job.first_step is None:
            job.first_step = (now, step)
        t0, s0 = job.first_step
        # The rate is measured from the first reported step, so model loading before it does not
        # inflate the estimate.
        if eta is None and step > s0:
            eta = (now - t0) / (step - s0) * max(0, total - step)
        due = (
            job.render is None or preview is not None or step <= s0 or step >= total
            or now - job.last_progress_at >= PROGRESS_INTERVAL
        )  # fmt: skip
        if due:
            job.last_progress_at = now
            self._emit(JobMessage(job.id, JobEvent.PROGRESS, job.panel_id, step=step, total=total, preview=preview,
                                  elapsed=now - job.started_at, eta=eta, kind=job.kind, info=info or {}))  # fmt: skip

    # ------------------------------------------------------------------ task jobs

    def _execute_task(self, job: _Job) -> None:
        """Run a task job with its registered runner.

        A render queued while a task runs waits until the task is over; it does not run between
        the task's checkpoints. Why: a training run holds the frozen base model, the adapter's
        optimizer state and activations on the GPU; a render between two checkpoints would need
        the render models loaded beside them (which the 12 and 16 GB recipes have no room for) or
        the training state unloaded and reloaded each time (tens of seconds either way, per
        switch). The author who wants a render now cancels the training in the Queue: it stops
        within a step with its checkpoint saved and resumes bit for bit later. Renders queued
        before the task started (or with a higher priority) still run first: the queue's order
        decides which job starts, never what interrupts one.
        """
        request = job.request
        assert isinstance(request, TaskRequest)
        kind = job.kind
        preload_torch_stack()  # every task trains or renders on torch (see _backend)
        job.started_at = job.last_activity = time.monotonic()
        self._emit(JobMessage(job.id, JobEvent.STARTED, kind=kind))
        try:
            with self._cond:
                if job.cancel_requested:
                    raise Cancelled(f"{request.label}: cancelled before it started")
                job.in_backend = True
                runner = self._runners[kind]
                if self.stall_timeout_s is not None:
                    self._arm_stall_check(job, self.stall_timeout_s)
            try:
                if request.needs_device_memory:
                    # The render models would share the GPU with the task's own: give their memory
                    # back (backends are recreated, and reload from disk, on the next render).
                    self._close_backends()
                context = TaskContext(
                    job.id,
                    self.resources,
                    lambda: job.cancel_requested,
                    lambda step, total, info, eta: self._progress(job, step, total, info=dict(info), eta=eta),
                    lambda step, total, images, info: self._emit(
                        JobMessage(
                            job.id,
                            JobEvent.SAMPLE,
                            step=step,
                            total=total,
                            samples=tuple(images),
                            info=dict(info),
                            elapsed=self._elapsed(job),
                            kind=kind,
                        )  # fmt: skip
                    ),
                )
                outcome = runner(request, context)
            finally:
                with self._cond:
                    job.in_backend = False
                self.resources.trim()  # the task's own models are dropped: give their memory back
            if job.abandoned:
                return
            if job.cancel_requested:  # the runner ignored the stop request and finished anyway
                raise Cancelled(f"{request.label}: cancelled")
        except Cancelled as exc:
            if job.abandoned:
                return
            if job.stalled:
                self._emit(JobMessage(job.id, JobEvent.ERROR, error=job.stalled, elapsed=self._elapsed(job), kind=kind))
                return
            self._emit(JobMessage(job.id, JobEvent.CANCELLED, error=str(exc), elapsed=self._elapsed(job), kind=kind))
            return
        except Exception as exc:
            if job.abandoned:
                return
            detail = traceback.format_exc()
            log.warning("task job %s (%s) failed:\n%s", job.id, kind, detail)
            self._emit(JobMessage(job.id, JobEvent.ERROR, error=_user_message(kind, exc, doer=f"the {kind!r} job"),
                                  detail=detail, elapsed=self._elapsed(job), kind=kind))  # fmt: skip
            return
        self._emit(JobMessage(job.id, JobEvent.FINISHED, outcome=outcome, elapsed=self._elapsed(job), kind=kind))

    def _backend(self, name: str, job: _Job) -> GenerationBackend:
        """The cached instance for ``name``, created here on the worker thread on first use (and again
        if the registry now maps the name to another class, e.g. a reloaded plugin)."""
        cls = get_backend_class(name)
        backend = self._backends.get(name)
        if backend is None or type(backend) is not cls:
            if cls.required_models:
                # A backend with models runs on torch: map its native libraries with the interpreter
                # lock released, so the import inside the backend does not freeze the GUI thread.
                preload_torch_stack()
            backend = cls()
            bind = getattr(backend, "bind_resources", None)
            if callable(bind):
                bind(self.resources)
            with self._cond:
                if not job.abandoned:  # a constructor that returned after its job was given up is not cached
                    self._backends[name] = backend
        return backend

    def _end_job(self, backend_name: str) -> None:
        """After a failed or cancelled job: let the backend drop per-job state, then free transient
        memory (loaded models stay cached)."""
        backend = self._backends.get(backend_name)
        release = getattr(backend, "release_job", None)
        if callable(release):
            try:
                release()
            except Exception:
                log.exception("backend %r: release_job() failed", backend_name)
        self.resources.trim()

    def _close_backends(self) -> None:
        for name, backend in self._backends.items():
            close = getattr(backend, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("backend %r: close() failed", name)
        self._backends.clear()
        self.resources.free()

    def _emit(self, message: JobMessage) -> None:
        self._subscribers.publish(message)

    @staticmethod
    def _elapsed(job: _Job) -> float:
        return time.monotonic() - job.started_at if job.started_at else 0.0


# ---------------------------------------------------------------------------------- helpers


def _panel_name(request: GenerationRequest) -> str:
    return f"panel {request.panel_id!r}" if request.panel_id else "its job"


def _is_out_of_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError (matched by name: no torch import), or the RuntimeError MPS and
    older torch raise with "out of memory" in the message."""
    if any(t.__name__ == "OutOfMemoryError" for t in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _oom_message(mode: str, retried: bool) -> str:
    tried = (
        f"also after freeing memory and retrying down to '{mode}' mode, the leanest"
        if retried
        else f"in '{mode}' mode, the leanest"
    )
    return (f"Out of GPU memory ({tried}). Render a smaller panel, use fewer steps, or close other programs "
            "that use the GPU.")  # fmt: skip


def _user_message(backend: str, exc: BaseException, doer: str = "") -> str:
    """One line for the user: our own errors already explain themselves; anything else is named."""
    doer = doer or f"the {backend!r} backend"
    if isinstance(exc, (GenerationError, BackendSettingsError)) or type(exc).__module__.startswith("comic_studio"):
        text = str(exc)
    elif _is_out_of_memory(exc):
        text = f"{doer} ran out of GPU memory: {exc}"
    else:
        text = f"{doer} failed: {type(exc).__name__}: {exc}"
    line = text.strip().splitlines()[0] if text.strip() else f"{doer} failed ({type(exc).__name__})"
    return line if len(line) <= 300 else line[:297] + "..."
