"""The evaluation report: ``report.json`` (validated by :class:`EvalReport`, whose JSON schema ships
as ``comic_studio/resources/schemas/eval_report.schema.json``) and a static ``report.html`` (image grid and one
inline-SVG bar chart per metric; no server, no script, nothing fetched).

``python -m comic_studio.evaluation.report`` rewrites the schema file (a test checks it is up to date)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from comic_studio.core.atomic import atomic_write_bytes, atomic_write_text
from comic_studio.core.resources import resource

SCHEMA_FILE = ("schemas", "eval_report.schema.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoseEntry(_Strict):
    found: bool
    akd: float | None = None
    mkr: float | None = None


class CharacterInPanel(_Strict):
    character_id: str
    name: str
    clip_i: float | None = Field(description="masked CLIP-I against the references; null: no reference/out of frame")
    face_similarity: float | None = Field(description="null: no face-embedding model installed, or no face found")
    pose: PoseEntry | None = Field(description="null: pose accuracy not measured (no detector)")
    cutout: Literal["segmentation", "staging", "empty"]


class PanelRun(_Strict):
    backend: str
    image: str | None = Field(description="the render, relative to the report's folder")
    asset: str | None = None
    seed: int | None = None
    render_seconds: float | None = None
    metric_seconds: float | None = None
    clip_t: float | None = None
    characters: list[CharacterInPanel] = []
    error: str | None = None


class PanelEntry(_Strict):
    panel_id: str
    label: str
    prompt: str
    runs: list[PanelRun]


class CharacterBackend(_Strict):
    backend: str
    panels: int
    mean_clip_i: float | None
    ap_clip_i: float | None = Field(description="mean pairwise CLIP-I over the character's panels")
    ap_clip_i_note: str = Field(description="why ap_clip_i is null, else empty")


class CharacterEntry(_Strict):
    character_id: str
    name: str
    backends: list[CharacterBackend]


class BackendEntry(_Strict):
    backend: str
    settings: dict[str, Any] = Field(description="the backend's effective settings (first panel's)")
    panels: int
    failed: int
    render_seconds: float
    metric_seconds: float
    clip_t: float | None
    clip_i: float | None
    ap_clip_i: float | None = Field(description="mean over the characters whose AP-CLIP-I is defined")
    akd: float | None
    mkr: float | None
    pose_fail_rate: float | None
    face_similarity: float | None = Field(
        default=None, description="mean over the figures with a face found; null: not measured or no face"
    )


class EvalSettings(_Strict):
    clip_model: str
    clip_cache_key: str
    segmentation: str
    pose_detector: str = Field(description="the detector asked for")
    pose_detector_used: str | None = Field(description="null: pose accuracy not measured here")
    face_similarity: bool
    face_similarity_note: str = Field(default="", description="the face encoder used, or why face similarity is absent")
    dry: bool


class EvalReport(_Strict):
    schema_version: Literal[1] = 1
    project: str
    created_at: str
    settings: EvalSettings
    backends: list[BackendEntry]
    panels: list[PanelEntry]
    characters: list[CharacterEntry]
    wall_seconds: float


METRICS: tuple[tuple[str, str, bool], ...] = (
    ("clip_t", "CLIP-T (prompt)", True),
    ("clip_i", "masked CLIP-I (references)", True),
    ("ap_clip_i", "AP-CLIP-I (across panels)", True),
    ("face_similarity", "face similarity", True),
    ("akd", "pose AKD (figure sizes)", False),
    ("pose_fail_rate", "pose failure rate", False),
    ("render_seconds", "render time (s)", False),
)
"""(field of BackendEntry, title, higher is better) of the bar charts."""


def schema() -> dict[str, Any]:
    return EvalReport.model_json_schema()


def schema_path() -> Path:
    return resource(*SCHEMA_FILE)


def write_schema(path: Path | None = None) -> Path:
    target = path or schema_path()
    atomic_write_text(target, json.dumps(schema(), indent=2, sort_keys=True) + "\n", "evaluation report schema")
    return target


def write_report(report: EvalReport, out: Path, thumbnails: dict[str, bytes]) -> tuple[Path, Path]:
    """``out/report.json`` and ``out/report.html``; ``thumbnails``: image path → small PNG inlined in the page."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    atomic_write_text(json_path, report.model_dump_json(indent=2) + "\n", "evaluation report")
    atomic_write_bytes(html_path, render_html(report, thumbnails).encode("utf-8"), "evaluation report page")
    return json_path, html_path


def thumbnail_png(image: Any, side: int = 256) -> bytes:
    small = image.convert("RGB")
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def bar_chart(title: str, values: list[tuple[str, float | None]], higher_better: bool) -> str:
    """An inline SVG bar chart: one bar per method (a missing value is a labelled gap)."""
    width, bar_h, gap, label_w = 460, 18, 6, 140
    defined = [abs(v) for _, v in values if v is not None]
    top = max(defined) if defined and max(defined) > 0 else 1.0
    height = 24 + len(values) * (bar_h + gap)
    rows = [
        f'<text x="0" y="14" font-weight="bold">{html.escape(title)} ({"higher" if higher_better else "lower"} is better)</text>'
    ]
    for i, (name, value) in enumerate(values):
        y = 24 + i * (bar_h + gap)
        rows.append(f'<text x="0" y="{y + 13}">{html.escape(name)}</text>')
        if value is None:
            rows.append(f'<text x="{label_w}" y="{y + 13}" fill="#888">n/a</text>')
            continue
        w = max(1.0, (width - label_w - 60) * abs(value) / top)
        rows.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#4a7bd0"/>')
        rows.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{_fmt(value)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="12">{"".join(rows)}</svg>')  # fmt: skip


def render_html(report: EvalReport, thumbnails: dict[str, bytes]) -> str:
    esc = html.escape
    names = [b.backend for b in report.backends]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Evaluation: {esc(report.project)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;font-size:12px}"
        "img{max-width:256px;display:block}.charts svg{margin:0 1em 1em 0}</style></head><body>",
        f"<h1>{esc(report.project)}: {len(report.panels)} panel(s) × {len(names)} method(s)</h1>",
        f"<p>CLIP model {esc(report.settings.clip_model)}; background: {esc(report.settings.segmentation)}; "
        f"pose detector: {esc(report.settings.pose_detector_used or 'none')}; "
        f"face similarity: {esc(report.settings.face_similarity_note or ('on' if report.settings.face_similarity else 'off'))}; "
        f"{report.created_at}</p>",
        "<h2>Metrics per method</h2><div class='charts'>",
    ]
    for key, title, higher in METRICS:
        parts.append(bar_chart(title, [(b.backend, getattr(b, key)) for b in report.backends], higher))
    parts.append("</div><h2>AP-CLIP-I per character</h2><table><tr><th>character</th>")
    parts.extend(f"<th>{esc(n)}</th>" for n in names)
    parts.append("</tr>")
    for character in report.characters:
        cells = {c.backend: c for c in character.backends}
        parts.append(f"<tr><td>{esc(character.name)}</td>")
        for n in names:
            c = cells.get(n)
            text = "—" if c is None else (_fmt(c.ap_clip_i) if c.ap_clip_i is not None else esc(c.ap_clip_i_note))
            parts.append(f"<td>{text}</td>")
        parts.append("</tr>")
    parts.append("</table><h2>Panels</h2><table><tr><th>panel</th>")
    parts.extend(f"<th>{esc(n)}</th>" for n in names)
    parts.append("</tr>")
    for panel in report.panels:
        runs = {r.backend: r for r in panel.runs}
        parts.append(f"<tr><td>{esc(panel.label)}<br><small>{esc(panel.prompt[:200])}</small></td>")
        for n in names:
            run = runs.get(n)
            parts.append("<td>" + (_cell(run, thumbnails) if run else "—") + "</td>")
        parts.append("</tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)


def _cell(run: PanelRun, thumbnails: dict[str, bytes]) -> str:
    esc = html.escape
    if run.error:
        return f"<b>failed</b>: {esc(run.error)}"
    out = []
    if run.image and run.image in thumbnails:
        data = base64.b64encode(thumbnails[run.image]).decode("ascii")
        out.append(f"<a href='{esc(run.image)}'><img alt='{esc(run.backend)}' src='data:image/png;base64,{data}'></a>")
    out.append(f"CLIP-T {_fmt(run.clip_t)} · {_fmt(run.render_seconds, 2)} s")
    for c in run.characters:
        pose = "—" if c.pose is None else ("not found" if not c.pose.found else f"AKD {_fmt(c.pose.akd)}")
        face = "" if c.face_similarity is None else f", face {_fmt(c.face_similarity)}"
        out.append(f"<br>{esc(c.name)}: CLIP-I {_fmt(c.clip_i)}{face}, pose {pose}")
    return "".join(out)


if __name__ == "__main__":
    print(write_schema())
