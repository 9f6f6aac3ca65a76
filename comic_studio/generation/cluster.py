"""The engine on a Ray cluster: the same interface as :class:`~comic_studio.generation.engine.Engine`,
with one worker per GPU (or per CPU slot of a local test cluster) hosting our own engine unchanged.

Why Ray and not a scheduler of our own: it places actors on GPUs, ships the requests, notices lost
workers and runs locally for honest tests. Each worker is a Ray actor that owns an ordinary
:class:`Engine` — the same worker thread, model cache, OOM fallback, watchdog and backends as on a
desktop — so every method renders remotely exactly as it does here and replays bit for bit at a seed.

The client keeps the queue. A job goes to a worker only when that worker is idle, so priorities,
reprioritising and cancelling queued jobs stay exact and cheap (nothing to recall from a remote
queue), and a lost worker costs at most the one job it was running, which goes back to the front of
the queue for another worker. Panels of the same characters prefer the worker that rendered them last
(``affinity``): its identity banks and models are warm. Messages come back through one ``poll`` per
busy worker (a blocking call with a time limit, answered as soon as the worker has something), are
given the client's job id and go to the subscribers in the order the worker produced them, on the
client's dispatcher thread — as the local engine calls its subscribers on its worker thread.

Files a request names by path (characters' LoRAs and identity tokens, identity banks) and its big
inline images travel through Ray's object store by content hash, once while queued jobs name them
(freed when none does, and at shutdown), into each worker's cache (:mod:`.cluster_assets`). Model weights do not: each worker has its own models folder (the
README's requirement), and :meth:`ClusterEngine.call_workers` lets a higher layer ask every worker
what it lacks.

Task jobs (training) run on one worker like renders. Their runners are registered by import path
(``module:function``, resolved in the worker), since a callable of the client cannot be sent as
code. A training run keeps its checkpoint in the worker's own folder, its result (the LoRA or
identity file's bytes) comes back on the FINISHED message, a cancelled run's checkpoint comes back to
the client's checkpoint path and a resume ships it out again: no shared folder is needed
(:mod:`.cluster_assets`). A task that writes files elsewhere (the AnimeAdapter's output folder)
still needs that folder on the worker.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import platform
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from comic_studio import __version__
from comic_studio.core.errors import ComicStudioError
from comic_studio.generation.cluster_assets import (
    AssetShipper,
    drop_worker_checkpoint,
    keep_banks,
    keep_checkpoint,
    materialise,
    place_checkpoint,
    returned_banks,
    returned_checkpoint,
)
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent, JobMessage, Subscriber, Subscribers
from comic_studio.generation.request import GenerationError, GenerationRequest
from comic_studio.generation.settings import EngineSettings
from comic_studio.generation.tasks import CheckpointedTask, TaskRequest, TaskRunner

log = logging.getLogger(__name__)

# A Ray driver installs its own handler for crash signals in this process (the studio's, a test run's);
# it outlives ray.shutdown() and swallows Python's faulthandler report, so a later crash anywhere in the
# app would end without a trace. Ray reads this once, when it is first imported — which happens only
# after this module is.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")

CHECKPOINT_FILE = "checkpoint"
"""The key of a training run's checkpoint among the files a worker sends back with a final message
(the others are identity banks, by hash)."""
POLL_SECONDS = 0.5
"""How long one ``poll`` waits on the worker for a message before it answers with none."""
CONNECT_TIMEOUT_S = 120.0
"""How long the workers may take to start and answer who they are (imports torch on first start)."""
NAMESPACE = "comic-studio"
WORKER_NICENESS_ENV = "RAY_worker_niceness"
"""Ray's setting of its workers' niceness (read by the raylet a local cluster starts)."""


class ClusterError(ComicStudioError):
    """The cluster cannot be used: unreachable, version mismatch, no workers. Says what to do."""


# ------------------------------------------------------------------------------------ the worker


def _worker_versions() -> dict[str, str]:
    import ray

    return {"comic-studio": __version__, "ray": ray.__version__, "python": platform.python_version()}


class WorkerHost:
    """Runs inside a Ray actor: one :class:`Engine` and a buffer of its messages for ``poll``.

    Called from Ray's thread pool (``max_concurrency`` > 1), so ``poll`` may wait while ``run`` or
    ``cancel`` arrive; the engine and a :class:`queue.Queue` are thread-safe."""

    def __init__(self, settings: dict[str, str] | None, threads: int | None) -> None:
        if threads:
            try:
                import torch

                torch.set_num_threads(threads)
            except ImportError:  # a storyboard-only worker has no torch
                pass
        self._engine = Engine(EngineSettings.from_dict(settings) if settings else None, name="cluster-worker")
        self._messages: queue.Queue[tuple[JobMessage, dict[str, bytes]]] = queue.Queue()
        self._client_ids: dict[str, str] = {}
        self._local_ids: dict[str, str] = {}
        self._shipped: dict[str, GenerationRequest] = {}
        """Per client job id, the request as the client packed it (its bank folder, banks sent)."""
        self._checkpoints: dict[str, tuple[str, str]] = {}
        """Per client job id of a training run: (the client's checkpoint path, this worker's)."""
        self._lock = threading.Lock()
        self._engine.subscribe(self._collect)

    def info(self) -> dict[str, Any]:
        devices: list[str] = []
        try:
            import torch

            if torch.cuda.is_available():
                devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except ImportError:
            pass
        import ray

        node = ray.get_runtime_context().get_node_id()
        return {"versions": _worker_versions(), "pid": os.getpid(), "host": platform.node(), "node": node,
                "gpus": devices}  # fmt: skip

    def register_runner(self, kind: str, path: str) -> None:
        """Register the runner at ``module:function`` (imported here, in the worker)."""
        self._engine.register_runner(kind, resolve_runner(path))

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` here (a module-level function, sent by reference): what a worker has."""
        return fn(*args)

    def run(self, client_id: str, request: Any, manifest: dict[str, list[Any]] | None = None) -> None:
        import ray

        if isinstance(request, GenerationRequest) and manifest is not None:
            try:
                local_request = materialise(request, manifest, ray.get)
            except ComicStudioError as exc:
                self._messages.put((JobMessage(client_id, JobEvent.STARTED, request.panel_id), {}))
                self._messages.put((JobMessage(client_id, JobEvent.ERROR, request.panel_id, error=str(exc)), {}))
                return
            self._shipped[client_id] = request
            request = local_request
        elif isinstance(request, CheckpointedTask):
            try:
                local_task = place_checkpoint(request, manifest or {}, ray.get)
            except ComicStudioError as exc:
                kind = getattr(request, "kind", "task")
                self._messages.put((JobMessage(client_id, JobEvent.STARTED, kind=kind), {}))
                self._messages.put((JobMessage(client_id, JobEvent.ERROR, error=str(exc), kind=kind), {}))
                return
            self._checkpoints[client_id] = (request.checkpoint, local_task.checkpoint)
            request = local_task
        with self._lock:  # the id map before any message of the job can be collected
            local_id = self._engine.submit(request)
            self._client_ids[local_id] = client_id
            self._local_ids[client_id] = local_id

    def cancel(self, client_id: str) -> bool:
        with self._lock:
            local_id = self._local_ids.get(client_id)
        return local_id is not None and self._engine.cancel(local_id)

    def poll(self, timeout: float) -> list[tuple[JobMessage, dict[str, bytes]]]:
        try:
            first = self._messages.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        while True:
            try:
                batch.append(self._messages.get_nowait())
            except queue.Empty:
                return batch

    def set_settings(self, settings: dict[str, str]) -> None:
        self._engine.set_settings(EngineSettings.from_dict(settings))

    def shutdown(self) -> None:
        self._engine.shutdown()

    def _collect(self, message: JobMessage) -> None:
        if message.event is JobEvent.QUEUED:
            return  # the client announced the job when it was submitted there
        with self._lock:
            client_id = self._client_ids.get(message.job_id)
            if client_id is None:
                # run() still holds the lock while submit() emits QUEUED; nothing else comes first.
                return
            if message.event.is_final:
                del self._client_ids[message.job_id]
                self._local_ids.pop(client_id, None)
        files: dict[str, bytes] = {}
        shipped = self._shipped.pop(client_id, None) if message.event.is_final else None
        if message.event is JobEvent.FINISHED and message.result is not None:
            try:
                files = returned_banks(shipped, dict(message.result.settings))
            except (OSError, ValueError) as exc:
                log.warning("could not read back the banks of %s: %s", client_id, exc)
        checkpoint = self._checkpoints.pop(client_id, None) if message.event.is_final else None
        if checkpoint is not None:
            theirs, mine = checkpoint
            if message.event is JobEvent.FINISHED:
                drop_worker_checkpoint(mine)  # the result rides on the message; nothing to resume
            else:
                data = returned_checkpoint(mine)
                if data is not None:
                    files = {CHECKPOINT_FILE: data}
                # "resume from <path>": the client's path, where the checkpoint will be
                message = replace(message, error=message.error.replace(mine, theirs))
        self._messages.put((replace(message, job_id=client_id), files))


def runner_path(runner: TaskRunner) -> str:
    """``module:qualname`` of a module-level runner; :class:`GenerationError` for anything else (a
    lambda, a bound method, a closure cannot be found again in the worker)."""
    path = f"{getattr(runner, '__module__', '')}:{getattr(runner, '__qualname__', '')}"
    try:
        found = resolve_runner(path)
    except GenerationError:
        found = None
    if found is not runner:
        raise GenerationError(
            f"a task runner for the cluster must be a module-level function (got {runner!r}): the "
            "workers import it by name"
        )
    return path


def resolve_runner(path: str) -> TaskRunner:
    module, _, name = path.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise GenerationError(f"task runner {path!r} cannot be imported here ({exc})") from exc
    if not callable(found):
        raise GenerationError(f"task runner {path!r} is not a function")
    return found


# ------------------------------------------------------------------------------------ the client


@dataclass(eq=False)
class _ClusterJob:
    id: str
    request: GenerationRequest | TaskRequest
    priority: int
    seq: int
    affinity: frozenset[str]
    cancel_requested: bool = False
    attempts: int = 0
    shipped: Any = None
    """A render: the request as sent (files named by hash); a task: the task request itself."""
    manifest: dict[str, list[Any]] | None = None
    """A render: the objects behind the hashes (see :mod:`.cluster_assets`)."""

    @property
    def panel_id(self) -> str | None:
        return self.request.panel_id if isinstance(self.request, GenerationRequest) else None

    @property
    def kind(self) -> str:
        return "render" if isinstance(self.request, GenerationRequest) else self.request.kind

    def sort_key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)


@dataclass(eq=False)
class _Worker:
    name: str
    actor: Any
    info: dict[str, Any] = field(default_factory=dict)
    job: _ClusterJob | None = None
    poll_ref: Any = None
    alive: bool = True
    recent: frozenset[str] = frozenset()
    """The characters of the last job it ran (its warm identity banks)."""


def parse_cluster_address(value: str) -> tuple[str | None, int]:
    """``local`` / ``local:N`` → (None, N workers); anything else is a Ray address (``ray://host:10001``,
    ``host:6379``, ``auto``) → (address, 0: one worker per GPU the cluster has)."""
    if value == "local" or value.startswith("local:"):
        _, _, count = value.partition(":")
        try:
            workers = int(count) if count else 2
        except ValueError:
            raise ClusterError(f"--cluster {value!r}: the worker count after 'local:' must be a number") from None
        if not 1 <= workers <= 64:
            raise ClusterError(f"--cluster {value!r}: between 1 and 64 local workers")
        return None, workers
    if not value.strip():
        raise ClusterError("--cluster needs 'local', 'local:N' or a Ray address")
    return value.strip(), 0


class ClusterEngine:
    """An :class:`Engine` look-alike whose jobs run on Ray actors (see the module docstring).

    ``address=None`` starts a private local Ray instance with ``workers`` CPU workers (shut down with
    the engine); an address connects to a running cluster and starts one worker per GPU there (or
    ``workers`` CPU workers when given). ``threads_per_worker`` caps torch's threads in each worker
    (default 1 on a local cluster: the workers share this machine's cores). ``worker_env``: more
    environment variables for the workers (e.g. their own cache or bank folder)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int = 0,
        settings: EngineSettings | None = None,
        threads_per_worker: int | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        max_attempts: int = 3,
        worker_env: dict[str, str] | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ClusterError(
                f"rendering on a cluster needs Ray ({exc}); install it with: pip install 'comic-studio[cluster]'"
            ) from exc
        self._ray = ray
        self._settings = settings or EngineSettings()
        self._max_attempts = max_attempts
        self._owns_ray = False
        self._connect(address, workers)
        local = address is None
        gpus = 0 if local else int(ray.cluster_resources().get("GPU", 0))
        count = workers or gpus
        if count < 1:
            self._disconnect()
            raise ClusterError(
                f"the Ray cluster at {address} has no GPUs; give a worker count to use its CPUs "
                "(or start workers on GPU machines: README 'Rendering on a Ray cluster')"
            )
        threads = threads_per_worker if threads_per_worker is not None else (1 if local else None)
        # The client's COMIC_STUDIO_* variables (the default SDXL model, the tiny kit) for workers
        # that share this machine's folders.
        env = {k: v for k, v in os.environ.items() if k.startswith("COMIC_STUDIO_")} | dict(worker_env or {})
        options: dict[str, Any] = {"max_concurrency": 4, "num_cpus": 1, "runtime_env": {"env_vars": env}}
        if gpus and not workers:
            options["num_gpus"] = 1
        actor_class = ray.remote(**options)(WorkerHost)
        session = uuid.uuid4().hex[:6]
        self._workers = [
            _Worker(
                name=f"worker-{i + 1}",
                actor=actor_class.options(name=f"cs-{session}-{i}").remote(self._settings.to_dict(), threads),
            )  # fmt: skip
            for i in range(count)
        ]
        self._check_workers(connect_timeout_s)
        self._cond = threading.Condition()
        self._shipper = AssetShipper(ray.put)
        self._runners: dict[str, str] = {}
        self._queued: dict[str, _ClusterJob] = {}
        self._seq = itertools.count()
        self._subscribers = Subscribers("cluster")
        self._stopping = False
        self._thread = threading.Thread(target=self._dispatch, name="cluster-dispatcher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ connecting

    def _connect(self, address: str | None, workers: int) -> None:
        ray = self._ray
        if ray.is_initialized():
            return  # the caller's Ray session (tests, a notebook): use it as it is
        try:
            if address is None:
                # Ray starts its workers at niceness 15 (RAY_worker_niceness) to keep its own daemons
                # responsive on a shared node. Here the workers are this computer's renderers: at 15
                # they get about 1/30 of a core against any busy process (measured: tiny renders of
                # a second did not finish in 240 s beside three busy processes), so they run at the
                # app's priority, as the local engine does. A value the user set is kept.
                os.environ.setdefault(WORKER_NICENESS_ENV, "0")
                # "local": always a new private instance, never a cluster another process started
                # on this machine (address=None would join the latest one it finds in /tmp/ray).
                ray.init(address="local", num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                         namespace=NAMESPACE, configure_logging=False)  # fmt: skip
            else:
                ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, configure_logging=False)
        except Exception as exc:
            where = "a local Ray instance" if address is None else f"the Ray cluster at {address}"
            raise ClusterError(f"could not start or reach {where}: {type(exc).__name__}: {exc}") from exc
        self._owns_ray = True

    def _disconnect(self) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False

    def _check_workers(self, timeout: float) -> None:
        ray = self._ray
        mine = _worker_versions()
        try:
            infos = ray.get([w.actor.info.remote() for w in self._workers], timeout=timeout)
        except Exception as exc:
            self._kill_workers()
            self._disconnect()
            raise ClusterError(
                f"the cluster's workers did not start within {timeout:g} s ({type(exc).__name__}: {exc}); "
                "check that comic-studio is installed on every node"
            ) from exc
        for worker, info in zip(self._workers, infos):
            worker.info = info
            theirs = info["versions"]
            different = {k: (mine[k], theirs.get(k)) for k in mine if theirs.get(k) != mine[k]}
            if different:
                self._kill_workers()
                self._disconnect()
                listed = ", ".join(f"{k} {a} here, {b} on {info['host']}" for k, (a, b) in different.items())
                raise ClusterError(f"version mismatch with the cluster ({listed}); install the same versions")

    def _kill_workers(self) -> None:
        for worker in self._workers:
            try:
                self._ray.kill(worker.actor)
            except Exception:  # already gone
                pass

    # ------------------------------------------------------------------ the Engine interface

    def register_runner(self, kind: str, runner: TaskRunner) -> None:
        """Run task requests of ``kind`` on the workers with ``runner``, a module-level function that
        every worker imports by name (:func:`runner_path`)."""
        path = runner_path(runner)
        with self._cond:
            if self._runners.get(kind) == path:
                return
            workers = [w for w in self._workers if w.alive]
        self._ray.get([w.actor.register_runner.remote(kind, path) for w in workers])
        with self._cond:
            self._runners[kind] = path

    def call_workers(self, fn: Callable[..., Any], *args: Any, timeout: float = 60.0) -> dict[str, Any]:
        """``fn(*args)`` on every live worker (a module-level function, imported there): ``{worker
        name: its result}``, or the exception it raised (e.g. what models the worker lacks)."""
        with self._cond:
            workers = [w for w in self._workers if w.alive]
        refs = [w.actor.call.remote(fn, *args) for w in workers]
        out: dict[str, Any] = {}
        for worker, ref in zip(workers, refs):
            try:
                out[worker.name] = self._ray.get(ref, timeout=timeout)
            except Exception as exc:  # a worker that fails or is lost: said per worker
                cause = getattr(exc, "cause", None)
                out[worker.name] = cause if isinstance(cause, BaseException) else exc
        return out

    def submit(self, request: GenerationRequest | TaskRequest, priority: int = 0) -> str:
        if isinstance(request, GenerationRequest):
            request = Engine._validated(request)  # the same checks, here, synchronously
            shipped: Any
            manifest: dict[str, list[Any]] | None
            shipped, manifest = self._shipper.pack(request)  # reads the files now: later changes don't matter
            affinity = frozenset(c.id for c in request.characters)
        elif isinstance(request, TaskRequest):
            with self._cond:
                if request.kind not in self._runners:
                    raise GenerationError(f"no runner is registered for {request.kind!r} jobs")
            manifest = self._shipper.pack_checkpoint(request) if isinstance(request, CheckpointedTask) else None
            shipped, affinity = request, frozenset()
        else:
            raise GenerationError(f"submit() needs a GenerationRequest or a task request, got {type(request).__name__}")
        job = _ClusterJob(uuid.uuid4().hex[:12], request, int(priority), next(self._seq), affinity,
                          shipped=shipped, manifest=manifest)  # fmt: skip
        with self._cond:
            if self._stopping:
                raise GenerationError("the cluster engine has been shut down")
        render = request if isinstance(request, GenerationRequest) else None
        self._emit(JobMessage(job.id, JobEvent.QUEUED, job.panel_id, request=render, kind=job.kind,
                              task=None if render is not None else request))  # fmt: skip
        with self._cond:
            self._queued[job.id] = job
            self._cond.notify_all()
        return job.id

    def cancel(self, job_id: str) -> bool:
        with self._cond:
            job = self._queued.pop(job_id, None)
            if job is None:
                for worker in self._workers:
                    if worker.job is not None and worker.job.id == job_id:
                        worker.job.cancel_requested = True
                        worker.actor.cancel.remote(job_id)
                        return True
                return False
            self._release_objects()
        self._emit(JobMessage(job.id, JobEvent.CANCELLED, job.panel_id))
        return True

    def cancel_all(self) -> None:
        with self._cond:
            doomed = sorted(self._queued.values(), key=_ClusterJob.sort_key)
            self._queued.clear()
            for worker in self._workers:
                if worker.job is not None:
                    worker.job.cancel_requested = True
                    worker.actor.cancel.remote(worker.job.id)
            self._release_objects()
        for job in doomed:
            self._emit(JobMessage(job.id, JobEvent.CANCELLED, job.panel_id))

    def reprioritize(self, job_id: str, priority: int) -> bool:
        with self._cond:
            job = self._queued.get(job_id)
            if job is None:
                return False
            job.priority = int(priority)
            return True

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(callback)

    def pending(self) -> list[str]:
        with self._cond:
            return [job.id for job in sorted(self._queued.values(), key=_ClusterJob.sort_key)]

    def running(self) -> str | None:
        jobs = self.running_jobs()
        return jobs[0] if jobs else None

    def running_jobs(self) -> list[str]:
        """Every job running now (one per busy worker)."""
        with self._cond:
            return [w.job.id for w in self._workers if w.job is not None]

    def workers(self) -> list[dict[str, Any]]:
        """Each worker: name, host, pid, GPUs, versions, alive, the job it runs."""
        with self._cond:
            return [{"name": w.name, **w.info, "alive": w.alive, "job": w.job.id if w.job else None}
                    for w in self._workers]  # fmt: skip

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queued or any(w.job is not None for w in self._workers):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def set_settings(self, settings: EngineSettings) -> None:
        self._settings = settings
        for worker in self._workers:
            if worker.alive:
                worker.actor.set_settings.remote(settings.to_dict())

    @property
    def settings(self) -> EngineSettings:
        return self._settings

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def shutdown(self, wait: bool = True) -> None:
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
        self.cancel_all()
        if wait:
            self.wait_idle(timeout=30)
        with self._cond:
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)
        for worker in self._workers:
            if worker.alive:
                try:
                    self._ray.get(worker.actor.shutdown.remote(), timeout=30)
                except Exception:
                    log.warning("cluster %s did not shut down cleanly", worker.name)
        self._shipper.release()
        self._kill_workers()
        self._disconnect()

    def __enter__(self) -> ClusterEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ the dispatcher thread

    def _dispatch(self) -> None:
        ray = self._ray
        while True:
            with self._cond:
                if self._stopping and not self._queued and all(w.job is None for w in self._workers):
                    return
                failed = self._assign()
                busy = [w for w in self._workers if w.job is not None and w.alive]
                if not busy and not failed:
                    self._cond.wait(POLL_SECONDS)
                    continue
                for worker in busy:
                    if worker.poll_ref is None:
                        worker.poll_ref = worker.actor.poll.remote(POLL_SECONDS)
                refs = {w.poll_ref: w for w in busy}
            for message in failed:
                self._emit(message)
            if not refs:
                continue
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_SECONDS * 2)
            for ref in ready:
                self._collect(refs[ref], ref)

    def _assign(self) -> list[JobMessage]:
        """Give queued jobs to idle workers, best job first, preferring the worker that last rendered
        the job's characters (call under the lock). Returns the ERROR messages of jobs no worker is
        left to run, for the caller to send once the lock is released."""
        idle = [w for w in self._workers if w.alive and w.job is None]
        if not any(w.alive for w in self._workers) and self._queued:
            doomed = sorted(self._queued.values(), key=_ClusterJob.sort_key)
            self._queued.clear()
            self._cond.notify_all()
            error = "every cluster worker was lost; render again or restart the cluster"
            return [JobMessage(job.id, JobEvent.ERROR, job.panel_id, error=error) for job in doomed]
        for job in sorted(self._queued.values(), key=_ClusterJob.sort_key):
            if not idle:
                break
            worker = max(idle, key=lambda w: len(w.recent & job.affinity))
            idle.remove(worker)
            del self._queued[job.id]
            job.attempts += 1
            worker.job = job
            worker.recent = job.affinity or worker.recent
            worker.actor.run.remote(job.id, job.shipped, job.manifest)
        return []

    def _collect(self, worker: _Worker, ref: Any) -> None:
        ray = self._ray
        try:
            messages = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the actor died or its node went away
            self._lost(worker, exc)
            return
        with self._cond:
            worker.poll_ref = None
            job = worker.job
        for message, files in messages:
            if job is not None and message.job_id == job.id and message.event is JobEvent.FINISHED:
                message = self._as_client(job, message, files)
            elif job is not None and message.job_id == job.id and CHECKPOINT_FILE in files:
                message = self._keep_checkpoint(job, message, files[CHECKPOINT_FILE])
            if message.event.is_final:
                with self._cond:
                    if worker.job is not None and worker.job.id == message.job_id:
                        worker.job = None
                    self._release_objects()
            self._emit(message)
            if message.event.is_final:
                with self._cond:
                    self._cond.notify_all()

    def _as_client(self, job: _ClusterJob, message: JobMessage, banks: dict[str, bytes]) -> JobMessage:
        """A finished render as if it ran here: the banks the worker made written into the client's
        bank folder, and the client's own values (its bank folder, its LoRA and identity paths, its
        data URIs) in the result's and request's settings instead of the worker's cache paths, so the
        stored request replays here."""
        from comic_studio.generation.cluster_assets import BANK_FOLDER, CLIENT_BANK_FOLDER

        if not isinstance(job.shipped, GenerationRequest) or not isinstance(job.request, GenerationRequest):
            return message
        sent, original = job.shipped.backend_settings, job.request.backend_settings
        mine = {k: v for k, v in original.items() if sent.get(k) != v}
        folder = sent.get(CLIENT_BANK_FOLDER)
        if folder:
            mine[BANK_FOLDER] = folder
        if banks and folder:
            try:
                keep_banks(job.shipped.backend, folder, banks)
            except (OSError, ValueError) as exc:
                return replace(message, event=JobEvent.ERROR, result=None, png=None,
                               error=f"cannot write the identity bank the job made to {folder} ({exc})")  # fmt: skip
        if not mine:
            return message
        result, request = message.result, message.request
        if result is not None:
            result.settings = {
                **result.settings,
                **{k: v for k, v in mine.items() if k in result.settings or k == BANK_FOLDER},
            }
        if request is not None:
            request = request.model_copy(update={"backend_settings": {**request.backend_settings, **mine}})
        return replace(message, result=result, request=request)

    def _release_objects(self) -> None:
        """Free the shipped objects no queued or running job names (call under the lock): a session
        rendering book after book must not keep every file it ever sent in the object store."""
        jobs = [*self._queued.values(), *(w.job for w in self._workers if w.job is not None)]
        self._shipper.release({digest for job in jobs for digest in (job.manifest or {})})

    def _keep_checkpoint(self, job: _ClusterJob, message: JobMessage, data: bytes) -> JobMessage:
        """A cancelled (or failed) training run: its checkpoint written where a local run keeps it,
        so a resume works from this machine (and ships it to whichever worker runs the resume)."""
        if not isinstance(job.request, CheckpointedTask):
            return message
        try:
            keep_checkpoint(job.request.checkpoint, data)
        except OSError as exc:
            return replace(message, error=f"{message.error} (the worker's checkpoint could not be kept at "
                                          f"{job.request.checkpoint}: {exc.strerror or exc})")  # fmt: skip
        return message

    def _lost(self, worker: _Worker, exc: BaseException) -> None:
        """A worker died (its node went away, it was killed): its job goes back to the front of the
        queue for another worker, unless it was cancelled or has failed too often."""
        log.warning("cluster %s was lost: %s", worker.name, exc)
        with self._cond:
            worker.alive = False
            worker.poll_ref = None
            job, worker.job = worker.job, None
            if job is not None and not job.cancel_requested and job.attempts < self._max_attempts:
                job.priority = max([job.priority, *(j.priority for j in self._queued.values())])
                job.seq = -job.attempts  # ahead of everything of its priority
                self._queued[job.id] = job
                job = None
            self._cond.notify_all()
        if job is not None:
            event = JobEvent.CANCELLED if job.cancel_requested else JobEvent.ERROR
            error = "" if job.cancel_requested else f"the cluster worker running it was lost ({worker.name})"
            self._emit(JobMessage(job.id, event, job.panel_id, error=error))

    def _emit(self, message: JobMessage) -> None:
        self._subscribers.publish(message)
