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
"""

from __future__ import annotations

import io
import itertools
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from comic_studio.generation.backend_api import BackendSettingsError, GenerationBackend
from comic_studio.generation.messages import JobEvent, JobMessage
from comic_studio.generation.registry import get_backend_class
from comic_studio.generation.request import Cancelled, GenerationError, GenerationRequest, GenerationResult
from comic_studio.generation.resources import EngineResources
from comic_studio.generation.settings import EngineSettings

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

Subscriber = Callable[[JobMessage], None]

DEFAULT_CANCEL_GRACE_S = 10.0
"""Seconds a backend has to stop after a cancel before its worker thread is abandoned."""

PROGRESS_INTERVAL = 0.02
"""Seconds between PROGRESS messages without a preview: a backend reporting thousands of tiny steps
must not flood the GUI thread (the first and last step and every preview are always sent)."""


class OutOfMemory(GenerationError):
    """The device ran out of memory even after freeing the cache and retrying in a leaner mode."""


@dataclass(eq=False)
class _Job:
    id: str
    request: GenerationRequest
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
        self._subscribers: list[Subscriber] = []
        self._subscribers_lock = threading.Lock()
        self._backends: dict[str, GenerationBackend] = {}
        self._name = name
        self._epoch = 0
        """Which worker is current: an abandoned one sees a newer epoch and leaves."""
        self._worker_done = False
        self._thread = self._start_worker()

    # ------------------------------------------------------------------ public API

    def submit(self, request: GenerationRequest, priority: int = 0) -> str:
        """Queue ``request``; returns its job id. Bad input raises here, synchronously:
        :class:`GenerationError` (unknown backend, not a request, engine shut down) or
        :class:`BackendSettingsError` (naming the bad setting)."""
        if not isinstance(request, GenerationRequest):
            raise GenerationError(f"submit() needs a GenerationRequest, got {type(request).__name__}")
        request = self._validated(request)
        job = _Job(uuid.uuid4().hex[:12], request, int(priority), next(self._seq))
        with self._cond:
            if self._stopping:
                raise GenerationError("the generation engine has been shut down")
            self._queued[job.id] = job  # visible to cancel()/pending() at once, not yet runnable
        # QUEUED goes out before the job may start, so no subscriber ever sees STARTED first.
        self._emit(JobMessage(job.id, JobEvent.QUEUED, request.panel_id, request=request))
        with self._cond:
            job.announced = True
            dropped = job.cancel_requested  # cancelled while QUEUED was going out
            self._cond.notify_all()
        if dropped:
            self._emit(JobMessage(job.id, JobEvent.CANCELLED, request.panel_id))
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
        with self._subscribers_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

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
            self._emit(JobMessage(job.id, JobEvent.CANCELLED, job.request.panel_id))

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
            job.watchdog = threading.Timer(self.cancel_grace_s, self._abandon_if_stuck, args=(job,))
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
            job.stalled = f"backend {job.request.backend!r} reported no step for {timeout:g} s (the stall time-out)"
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
            self._backends.pop(job.request.backend, None)
            self._epoch += 1
            self._thread = self._start_worker()
            self._cond.notify_all()
        message = (f"backend {job.request.backend!r} did not stop within {self.cancel_grace_s:g} s of cancel; its "
                   "thread is abandoned and the engine continues on a fresh worker")  # fmt: skip
        log.warning("job %s: %s", job.id, message)
        if job.stalled:
            self._emit(JobMessage(job.id, JobEvent.ERROR, job.request.panel_id, error=f"{job.stalled}; {message}",
                                  elapsed=self._elapsed(job)))  # fmt: skip
            return
        self._emit(JobMessage(job.id, JobEvent.CANCELLED, job.request.panel_id, error=message,
                              elapsed=self._elapsed(job)))  # fmt: skip

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
                self._execute(job)
            except BaseException as exc:  # the worker must outlive anything a job does
                # An abandoned job's CANCELLED went out already (and the finally ends this thread).
                if not job.abandoned:
                    log.exception("generation worker: unexpected failure around job %s", job.id)
                    # _execute sends every final message itself; reaching here means it could not.
                    self._emit(JobMessage(job.id, JobEvent.ERROR, job.request.panel_id,
                                          error=f"internal engine error: {type(exc).__name__}: {exc}",
                                          detail=traceback.format_exc()))  # fmt: skip
            finally:
                with self._cond:
                    for timer in (job.watchdog, job.stall_timer):
                        if timer is not None:
                            timer.cancel()
                    if not job.abandoned:
                        self._running = None
                        self._cond.notify_all()
            if job.abandoned:
                log.warning("job %s: the abandoned %r backend returned at last; its outcome is discarded",
                            job.id, job.request.backend)  # fmt: skip
                return  # this thread is no longer the engine's worker
        try:
            self._close_backends()
        finally:  # shutdown() waits for this, whatever closing the backends did
            with self._cond:
                self._worker_done = True
                self._cond.notify_all()

    def _execute(self, job: _Job) -> None:
        request = job.request
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
            png = _encode_png(result)
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
        on_step = self._step_callback(job)
        try:
            return backend.generate(job.request, on_step)
        except Exception as exc:
            if not _is_out_of_memory(exc) or job.abandoned:
                raise
            first_mode = self.resources.memory_mode_for(backend)
            # Stays lowered: the next job would fail the same way.
            lower = self.resources.lower_after_oom(backend)
            self.resources.free()
            if lower is None:
                raise OutOfMemory(_oom_message(first_mode, retried=False)) from exc
            log.warning(
                "job %s ran out of memory in %r mode; freed the cache, retrying in %r", job.id, first_mode, lower
            )
        if job.cancel_requested:
            raise Cancelled(f"job {job.id} was cancelled")
        job.first_step = None  # the rate of the failed attempt says nothing about the retry
        try:
            return backend.generate(job.request, on_step)
        except Exception as exc:
            if not _is_out_of_memory(exc):
                raise
            self.resources.free()
            raise OutOfMemory(_oom_message(self.resources.memory_mode_for(backend), retried=True)) from exc

    def _step_callback(self, job: _Job) -> Callable[[int, int, Image.Image | None], bool]:
        def on_step(step: int, total: int, preview: Image.Image | None = None) -> bool:
            if job.cancel_requested:
                return False
            now = job.last_activity = time.monotonic()
            if job.first_step is None:
                job.first_step = (now, step)
            t0, s0 = job.first_step
            # The rate is measured from the first reported step, so model loading before it does not
            # inflate the estimate.
            eta = (now - t0) / (step - s0) * max(0, total - step) if step > s0 else None
            due = preview is not None or step <= s0 or step >= total or now - job.last_progress_at >= PROGRESS_INTERVAL
            if due:
                job.last_progress_at = now
                self._emit(JobMessage(job.id, JobEvent.PROGRESS, job.request.panel_id, step=step, total=total,
                                      preview=preview, elapsed=now - job.started_at, eta=eta))  # fmt: skip
            return not job.cancel_requested

        return on_step

    def _backend(self, name: str, job: _Job) -> GenerationBackend:
        """The cached instance for ``name``, created here on the worker thread on first use (and again
        if the registry now maps the name to another class, e.g. a reloaded plugin)."""
        cls = get_backend_class(name)
        backend = self._backends.get(name)
        if backend is None or type(backend) is not cls:
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
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(message)
            except Exception:  # one broken listener must not stop the others or the worker
                log.exception("engine subscriber %r failed on %s", callback, message.event.value)

    @staticmethod
    def _elapsed(job: _Job) -> float:
        return time.monotonic() - job.started_at if job.started_at else 0.0


# ---------------------------------------------------------------------------------- helpers


def _encode_png(result: Any) -> bytes:
    if not isinstance(result, GenerationResult) or not result.images:
        raise GenerationError(f"the backend returned no image (got {type(result).__name__})")
    buffer = io.BytesIO()
    # compress_level 1: the worker's time matters more than a few percent of file size, and the
    # asset store keeps the bytes as they are.
    result.images[0].save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _is_out_of_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError (matched by name: no torch import), or the RuntimeError MPS and
    older torch raise with "out of memory" in the message."""
    if any(t.__name__ == "OutOfMemoryError" for t in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _oom_message(mode: str, retried: bool) -> str:
    tried = f"also after freeing memory and retrying in '{mode}' mode" if retried else f"in '{mode}' mode, the leanest"
    return (f"Out of GPU memory ({tried}). Render a smaller panel, use fewer steps, or close other programs "
            "that use the GPU.")  # fmt: skip


def _user_message(backend: str, exc: BaseException) -> str:
    """One line for the user: our own errors already explain themselves; anything else is named."""
    if isinstance(exc, (GenerationError, BackendSettingsError)) or type(exc).__module__.startswith("comic_studio"):
        text = str(exc)
    else:
        text = f"the {backend!r} backend failed: {type(exc).__name__}: {exc}"
    line = text.strip().splitlines()[0] if text.strip() else f"the {backend!r} backend failed ({type(exc).__name__})"
    return line if len(line) <= 300 else line[:297] + "..."
