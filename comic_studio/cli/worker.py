"""``comic-studio worker``: make this machine part of a Ray render cluster, or test one.

    comic-studio worker --head [--bind IP] [--port 6379]        # the cluster's head (on a GPU box)
    comic-studio worker --join HEAD_IP:6379 [--bind IP]          # another GPU box joins it
    comic-studio worker --test ADDRESS                           # what the studio's Test connection shows

Starting a worker runs Ray's own ``ray start`` (blocking until Ctrl+C) with safe defaults: Ray's
token authentication on (``RAY_AUTH_MODE=token``; the same token on every machine and the studio,
``ray get-auth-token --generate`` makes one), the node's address 127.0.0.1 unless ``--bind`` names
this machine's VPN address, and the dashboard on 127.0.0.1. Ray may still listen on other
interfaces for some of its services, so a firewall must keep its ports closed to all but the tunnel
or VPN: reach it from the studio through an SSH tunnel or the VPN, never through a port open to the
internet. ``--dry-run`` prints the command instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    command = subparsers.add_parser(
        "worker", help="start a Ray render worker on this machine (--head / --join), or --test a cluster"
    )
    role = command.add_mutually_exclusive_group(required=True)
    role.add_argument("--head", action="store_true", help="start the cluster's head here")
    role.add_argument("--join", metavar="HEAD:PORT", help="join the cluster whose head is at HEAD:PORT")
    role.add_argument("--test", metavar="ADDRESS", help="test the cluster at ADDRESS: machines, GPUs, versions, models")
    command.add_argument("--bind", default="127.0.0.1",
                         help="this machine's address for the cluster (default 127.0.0.1: reach it through an "
                              "SSH tunnel; a VPN address to let other machines join; never a public address)")  # fmt: skip
    command.add_argument("--port", type=int, default=6379, help="the head's port (default 6379)")
    command.add_argument("--num-gpus", type=int, help="GPUs to offer (default: Ray counts them)")
    command.add_argument("--num-cpus", type=int, help="CPUs to offer (default: Ray counts them)")
    command.add_argument("--dry-run", action="store_true", help="print the ray start command, run nothing")
    command.set_defaults(func=_cmd_worker)
    return command


def ray_start_command(args: argparse.Namespace) -> list[str]:
    """``ray start`` for this machine's role (run with this Python's Ray: the same version as the studio)."""
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--node-ip-address", args.bind]
    if args.head:
        command += ["--head", "--port", str(args.port), "--dashboard-host", "127.0.0.1",
                    "--ray-client-server-port", "10001"]  # fmt: skip
    else:
        command += ["--address", args.join]
    if args.num_gpus is not None:
        command += ["--num-gpus", str(args.num_gpus)]
    if args.num_cpus is not None:
        command += ["--num-cpus", str(args.num_cpus)]
    return command


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.test:
        return _test(args.test)
    from comic_studio import __version__
    from comic_studio.core.settings import load_settings

    settings, _problem = load_settings()
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_MODE", "token")
    command = ray_start_command(args)
    shown = " ".join(shlex.quote(part) for part in command)
    print(f"comic-studio {__version__}, Python {sys.version.split()[0]}; models folder: "
          f"{settings.effective_models_folder()}", file=sys.stderr)  # fmt: skip
    print(f"RAY_AUTH_MODE={env['RAY_AUTH_MODE']} {shown}")
    if env["RAY_AUTH_MODE"] != "token":
        print("warning: token authentication is off: anyone who reaches these ports can run code here",
              file=sys.stderr)  # fmt: skip
    if args.dry_run:
        return 0
    return subprocess.call(command, env=env)


def _test(address: str) -> int:
    from comic_studio.generation.cluster import ClusterError
    from comic_studio.workflows.cluster_probe import probe

    try:
        report = probe(address)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for node in report.nodes:
        print(node.line())
    print(f"{len(report.nodes)} machine(s), {report.gpus} GPU(s): {'usable' if report.usable else 'not usable'}")
    return 0 if report.usable else 1
