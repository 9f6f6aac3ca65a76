"""``comic-studio worker``: the ray start command it runs (safe defaults), and --test against a real
Ray cluster started here (``ray.cluster_utils.Cluster``)."""

from __future__ import annotations

import pytest

from comic_studio.cli import main


def test_a_head_binds_to_localhost_with_token_auth(capsys, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert main(["worker", "--head", "--num-gpus", "2", "--dry-run"]) == 0
    out = capsys.readouterr()
    line = out.out.strip()
    assert line.startswith("RAY_AUTH_MODE=token ")
    assert "start --block --node-ip-address 127.0.0.1 --head --port 6379 --dashboard-host 127.0.0.1" in line
    assert line.endswith("--num-gpus 2")
    assert "models folder:" in out.err


def test_joining_names_the_head_and_warns_without_auth(capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert main(["worker", "--join", "10.8.0.1:6379", "--bind", "10.8.0.2", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "--node-ip-address 10.8.0.2 --address 10.8.0.1:6379" in out.out
    assert "token authentication is off" in out.err


@pytest.mark.slow
def test_test_lists_the_cluster_machines(capsys):
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.wait_for_nodes()
        assert main(["worker", "--test", cluster.address]) == 0
    finally:
        cluster.shutdown()
    lines = capsys.readouterr().out.strip().splitlines()
    assert "no GPU, 1 CPUs" in lines[0] and "mismatch" not in lines[0]
    assert lines[-1] == "1 machine(s), 0 GPU(s): usable"
    assert main(["worker", "--test", "local"]) == 1
    assert "nothing to test" in capsys.readouterr().err
