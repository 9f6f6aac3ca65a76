"""Test a Ray cluster before rendering on it: reachable, its nodes with their CPUs and GPUs, and per
node the versions (comic-studio, Ray, Python) and the models each installed backend lacks there.

Run in a child process (:func:`probe`): Ray's connection is global to a process, so testing another
address from the studio must neither disturb a cluster it already renders on nor leave a half-open
connection behind when the address does not answer (the child is killed at the time limit).

    python -m comic_studio.workflows.cluster_probe ADDRESS   → JSON on stdout
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from comic_studio.generation.cluster import NAMESPACE, ClusterError, parse_cluster_address
from comic_studio.generation.request import GenerationRequest

PROBE_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class NodeReport:
    node: str
    host: str
    cpus: float
    gpus: float
    gpu_types: tuple[str, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)
    mismatch: str = ""
    """Empty when the node runs this machine's versions; else what differs, in words."""
    missing: dict[str, str] = field(default_factory=dict)
    """Per backend (its label) that cannot run there: the models it lacks."""
    error: str = ""
    """The node did not answer the version/models question (comic-studio not installed there?)."""

    def line(self) -> str:
        gpus = f"{int(self.gpus)} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else "no GPU"
        kinds = f" ({', '.join(self.gpu_types)})" if self.gpu_types else ""
        text = f"{self.host}: {gpus}{kinds}, {int(self.cpus)} CPUs"
        if self.error:
            return f"{text} — {self.error}"
        if self.mismatch:
            return f"{text} — {self.mismatch}"
        if self.missing:
            return f"{text} — missing models: " + "; ".join(f"{b} {why}" for b, why in self.missing.items())
        return f"{text} — ready"


@dataclass(frozen=True)
class ClusterReport:
    address: str
    nodes: tuple[NodeReport, ...]

    @property
    def usable(self) -> bool:
        return any(not n.mismatch and not n.error for n in self.nodes)

    @property
    def gpus(self) -> int:
        return int(sum(n.gpus for n in self.nodes if not n.mismatch and not n.error))


def node_report() -> dict[str, Any]:
    """Runs on a node (a Ray task): its versions and, per installed backend, the models it lacks there
    (its own models folder and settings)."""
    import platform

    from comic_studio.generation.cluster import _worker_versions
    from comic_studio.generation.registry import available_backends
    from comic_studio.workflows.readiness import backend_readiness

    missing = {}
    for name in sorted(available_backends()):
        readiness = backend_readiness(name)
        if readiness.installed and not readiness.ready:
            missing[readiness.label] = readiness.reason
    return {"versions": _worker_versions(), "host": platform.node(), "missing": missing}


def missing_models(jobs: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Runs in a cluster worker (``ClusterEngine.call_workers``): per ``(backend, settings)`` that
    cannot run there (the settings may name another model than the default), what it lacks."""
    from comic_studio.workflows.readiness import backend_readiness

    out = {}
    for name, settings in jobs:
        readiness = backend_readiness(name, settings=settings)
        if not readiness.ready:
            out[readiness.label] = readiness.reason
    return out


def check_worker_models(engine: Any, requests: list[GenerationRequest]) -> None:
    """Refuse a book before any job is queued when a worker of ``engine`` (a ClusterEngine) lacks
    models its ``requests`` need: every worker and what it lacks, in one :class:`ClusterError`."""
    jobs: dict[str, tuple[str, dict[str, Any]]] = {}
    for request in requests:
        # Model settings are names and paths: the big inline images need not travel for this question.
        small = {k: v for k, v in request.backend_settings.items() if not (isinstance(v, str) and len(v) > 4096)}
        jobs.setdefault(json.dumps([request.backend, small], sort_keys=True, default=str), (request.backend, small))
    answers = engine.call_workers(missing_models, list(jobs.values()))
    hosts = {w["name"]: w.get("host", "?") for w in engine.workers()}
    problems = []
    for name, answer in answers.items():
        if isinstance(answer, BaseException):
            problems.append(f"{name} ({hosts.get(name)}) could not be asked ({type(answer).__name__}: {answer})")
        elif answer:
            lacks = "; ".join(f"{label} {why}" for label, why in answer.items())
            problems.append(f"{name} ({hosts.get(name)}): {lacks}")
    if problems:
        raise ClusterError("models are missing on the cluster's workers (install them in each worker's models "
                           "folder: comic-studio models download …): " + " | ".join(problems))  # fmt: skip


def _probe_here(address: str, timeout: float) -> dict[str, Any]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from comic_studio.generation.cluster import _worker_versions

    where, _ = parse_cluster_address(address)
    if where is None:
        raise ClusterError("'local' starts a cluster on this computer when rendering: there is nothing to test")
    ray.init(address=where, namespace=NAMESPACE, log_to_driver=False, configure_logging=False)
    try:
        mine = _worker_versions()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        task = ray.remote(num_cpus=0)(node_report)
        refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
                for n in nodes]  # fmt: skip
        out = []
        for node, ref in zip(nodes, refs):
            resources = node.get("Resources", {})
            entry: dict[str, Any] = {
                "node": node["NodeID"], "host": node.get("NodeManagerHostname", "?"),
                "cpus": resources.get("CPU", 0.0), "gpus": resources.get("GPU", 0.0),
                "gpu_types": sorted(k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")),
            }  # fmt: skip
            try:
                answer = ray.get(ref, timeout=timeout)
            except Exception as exc:  # the node has no comic-studio, or a broken one
                entry["error"] = f"did not answer ({type(exc).__name__}); is comic-studio installed there?"
                out.append(entry)
                continue
            theirs = answer["versions"]
            different = [f"{k} {mine[k]} here, {theirs.get(k)} there" for k in mine if theirs.get(k) != mine[k]]
            entry.update(host=answer["host"], versions=theirs, missing=answer["missing"])
            if different:
                entry["mismatch"] = "version mismatch: " + ", ".join(different)
            out.append(entry)
        return {"address": address, "nodes": out}
    finally:
        ray.shutdown()


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> ClusterReport:
    """Test ``address`` in a child process; :class:`ClusterError` says why it cannot be used."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "comic_studio.workflows.cluster_probe", address, str(timeout)],
            capture_output=True, text=True, timeout=timeout + 30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ClusterError(f"no answer from {address} within {timeout + 30:g} s: check the address, and that "
                           "the SSH tunnel or VPN to it is up") from None  # fmt: skip
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise ClusterError(lines[-1] if lines else f"the test of {address} failed (exit {done.returncode})")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    nodes = tuple(
        NodeReport(
            n["node"],
            n["host"],
            n["cpus"],
            n["gpus"],
            tuple(n.get("gpu_types", ())),
            n.get("versions", {}),
            n.get("mismatch", ""),
            n.get("missing", {}),
            n.get("error", ""),
        )  # fmt: skip
        for n in data["nodes"]
    )
    return ClusterReport(data["address"], nodes)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    address, timeout = args[0], float(args[1]) if len(args) > 1 else PROBE_TIMEOUT_S
    try:
        report = _probe_here(address, timeout)
    except ClusterError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # Ray's own errors (unreachable, refused, auth): one line for the dialog
        print(f"could not reach the Ray cluster at {address}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
