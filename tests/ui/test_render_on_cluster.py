"""Preferences → Render on a Ray cluster, against a real Ray cluster started here
(``ray.cluster_utils.Cluster``: its own GCS and raylet processes, reached by address like a remote
head): Test connection lists its machine and CPUs without blocking the dialog, the choice is stored
in the settings, the studio's renders run there, and a cluster that cannot be used asks whether to
render here instead."""

from __future__ import annotations

import pytest
from render_helpers import all_panels, small_document

from comic_studio.core.settings import AppSettings, load_settings, save_settings
from comic_studio.ui.dialogs.preferences import PreferencesDialog
from comic_studio.ui.render_service import RenderService

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from comic_studio.generation import cluster as cluster_module  # noqa: E402
from comic_studio.generation.cluster import ClusterEngine  # noqa: E402

pytestmark = pytest.mark.slow
WAIT_MS = 240_000


@pytest.fixture(scope="module")
def head():
    """A one-node Ray cluster of 2 CPUs; the test process is not connected to it."""
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.wait_for_nodes()
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def test_preferences_test_connection_lists_the_cluster_and_stores_the_choice(qtbot, head, tmp_path):
    settings = AppSettings()
    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    group = dialog.render_on
    assert not group.test.isEnabled()  # "This computer" is the default
    group.cluster.setChecked(True)
    group.address.setText(head.address)
    group.workers.setValue(1)
    group.test.click()
    assert group.status.text().startswith("Connecting")
    assert not group.test.isEnabled()  # one test at a time; the dialog itself stays usable
    qtbot.waitUntil(lambda: not group.status.text().startswith("Connecting"), timeout=WAIT_MS)
    assert group.status.text() == "Connected: 1 machine, 0 GPUs.", group.status.text()
    (line,) = [group.nodes.item(i).text() for i in range(group.nodes.count())]
    assert "no GPU, 2 CPUs" in line and "mismatch" not in line
    assert group.test.isEnabled()

    dialog.apply_to(settings)
    save_settings(settings, tmp_path / "settings.json")
    stored, problem = load_settings(tmp_path / "settings.json")
    assert problem == ""
    assert (stored.render_on, stored.cluster_address, stored.cluster_workers) == ("cluster", head.address, 1)


def test_a_cluster_that_does_not_answer_is_said_in_the_dialog(qtbot):
    dialog = PreferencesDialog(AppSettings(render_on="cluster", cluster_address="local:2"))
    qtbot.addWidget(dialog)
    dialog.render_on.test.click()
    qtbot.waitUntil(lambda: dialog.render_on.status.text().startswith("Cannot use"), timeout=WAIT_MS)
    assert "nothing to test" in dialog.render_on.status.text()


def test_the_studio_renders_on_the_cluster_and_falls_back_when_asked(ctx, qtbot, head, monkeypatch, tmp_path):
    ctx.set_document(small_document())
    first, *others = all_panels(ctx.document)
    # A panel whose model the worker lacks: said per worker, the other panels render.
    first.backend, first.backend_settings = "sdxl", {"model": str(tmp_path / "gone")}
    said: list[str] = []
    ctx.message.connect(said.append)
    service = RenderService(ctx)
    try:
        service.set_render_target(head.address, workers=1)
        job_ids = service.render_all()
        assert isinstance(service.engine, ClusterEngine)
        assert len(job_ids) == len(others)
        assert any("missing on the cluster's workers" in m and "worker-1 (" in m for m in said), said
        qtbot.waitUntil(service.is_idle, timeout=WAIT_MS)
        assert first.result() is None and all(p.result() is not None for p in others)
        workers = service.engine.workers()
        assert [w["node"] for w in workers] == [head.head_node.node_id]
    finally:
        service.shutdown()
    assert not ray.is_initialized()  # the service's engine disconnected when it stopped

    # The same cluster with other versions: asked, and the user renders here instead.
    ctx.set_document(small_document())
    monkeypatch.setattr(cluster_module, "__version__", "0.0.0-elsewhere")
    asked: list[str] = []
    service = RenderService(ctx)
    service.cluster_fallback = lambda message: asked.append(message) or True
    try:
        service.set_render_target(head.address, workers=1)
        assert service.render_all()
        (message,) = asked
        assert "version mismatch" in message and head.address in message
        assert not isinstance(service.engine, ClusterEngine)
        qtbot.waitUntil(service.is_idle, timeout=WAIT_MS)
        assert all(p.result() is not None for p in all_panels(ctx.document))
    finally:
        service.shutdown()

    # Declined: nothing is queued, and the status bar says why.
    ctx.set_document(small_document())
    messages: list[str] = []
    ctx.message.connect(messages.append)
    service = RenderService(ctx)
    service.cluster_fallback = lambda message: False
    try:
        service.set_render_target(head.address, workers=1)
        assert service.render_all() == []
        assert any("version mismatch" in m for m in messages)
    finally:
        service.shutdown()
