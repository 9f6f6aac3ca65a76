"""Preferences → Render on: this computer, or a Ray cluster at an address (``generation.cluster``),
with a Test connection button that lists the cluster's machines, their GPUs, and per machine a
version mismatch or the models it lacks.

The test runs in a child process on a helper thread (:mod:`comic_studio.workflows.cluster_probe`,
:class:`~comic_studio.ui.background.BackgroundJobs`): connecting can take seconds, or a minute for an
address that does not answer, and the dialog stays usable meanwhile.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from comic_studio.core.settings import AppSettings
from comic_studio.ui.background import BackgroundJobs


class RenderOnGroup(QGroupBox):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None):
        super().__init__("Render on", parent)
        self.setObjectName("render_on")
        self.jobs = BackgroundJobs(self, "cluster-probe")
        form = QFormLayout(self)
        self.here = QRadioButton("This computer")
        self.cluster = QRadioButton("A Ray cluster")
        choice = QButtonGroup(self)
        choice.addButton(self.here)
        choice.addButton(self.cluster)
        (self.cluster if settings.render_on == "cluster" else self.here).setChecked(True)
        row = QHBoxLayout()
        row.addWidget(self.here)
        row.addWidget(self.cluster)
        row.addStretch(1)
        form.addRow(row)

        self.address = QLineEdit(settings.cluster_address)
        self.address.setPlaceholderText("ray://127.0.0.1:10001 (through an SSH tunnel), head-host:6379, local:2")
        self.address.setToolTip(
            "The cluster's head. Reach a remote cluster through an SSH tunnel or a VPN, with Ray's token "
            "authentication: never an open port on the internet. 'local:N' starts N workers on this computer."
        )
        self.workers = QSpinBox()
        self.workers.setRange(0, 64)
        self.workers.setSpecialValueText("One per GPU")
        self.workers.setValue(settings.cluster_workers)
        self.workers.setToolTip("How many workers to start (0: one per GPU; a cluster without GPUs needs a count)")
        self.test = QPushButton("Test connection")
        self.test.clicked.connect(self.test_connection)
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.test)
        form.addRow("Address:", address_row)
        form.addRow("Workers:", self.workers)
        self.status = QLabel("")
        self.status.setObjectName("cluster_status")
        self.status.setWordWrap(True)
        self.nodes = QListWidget()
        self.nodes.setObjectName("cluster_nodes")
        self.nodes.setMaximumHeight(90)
        form.addRow(self.status)
        form.addRow(self.nodes)
        for widget in (self.here, self.cluster):
            widget.toggled.connect(self._update)
        self.address.textChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        on = self.cluster.isChecked()
        for widget in (self.address, self.workers, self.nodes):
            widget.setEnabled(on)
        self.test.setEnabled(on and bool(self.address.text().strip()) and not self.jobs.pending())

    def test_connection(self) -> None:
        from comic_studio.workflows.cluster_probe import probe

        address = self.address.text().strip()
        if not address:
            return
        self.nodes.clear()
        self.status.setText(f"Connecting to {address}…")
        self.jobs.submit(probe, address, on_result=self._show, on_error=self._failed, lane="probe")
        self._update()

    def _show(self, report) -> None:
        self.nodes.clear()
        for node in report.nodes:
            self.nodes.addItem(node.line())
        machines = len(report.nodes)
        summary = (
            f"{machines} machine{'s' if machines != 1 else ''}, {report.gpus} GPU{'s' if report.gpus != 1 else ''}"
        )
        if report.usable:
            self.status.setText(f"Connected: {summary}.")
        else:
            self.status.setText(f"Reached, but no machine can render for this studio ({summary}): see below.")
        self._update()

    def _failed(self, error: BaseException) -> None:
        self.status.setText(f"Cannot use this cluster: {error}")
        self._update()

    def values(self) -> dict:
        return {
            "render_on": "cluster" if self.cluster.isChecked() else "local",
            "cluster_address": self.address.text().strip(),
            "cluster_workers": self.workers.value(),
        }
