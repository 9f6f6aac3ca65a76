"""Benchmarks: prints one JSON object of named figures (``--json``; default is also JSON, indented).

    python bench/run.py --json            # everything
    python bench/run.py --only project_io,parser

Figures are wall-clock seconds / rates on this machine; targets from the issues are listed beside
them so a regression reads at a glance. Not a test: nothing here fails the build.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource as rlimit
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def emit_result(result: dict, out: str | None = None) -> None:
    """What every benchmark script does with its figures: indented JSON on stdout (``_json_of``
    reads it back) and, with ``--out``, the same text in a file."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")


class EngineSteps:
    """Times an engine job by its PROGRESS messages (the GPU scripts compare it with raw diffusers):
    :meth:`run` submits a request, waits for its end and returns ``(seconds, steps per second)``,
    the rate measured between the first and the last step message (text encoding and decoding
    excluded). The engine throttles PROGRESS to 50/s; at SDXL speeds every step is sent."""

    def __init__(self, engine) -> None:
        import threading

        self.engine = engine
        self.stamps: list[float] = []
        self.done = threading.Event()
        engine.subscribe(self._on_message)

    def _on_message(self, msg) -> None:
        from comic_studio.generation.messages import JobEvent

        if msg.event is JobEvent.PROGRESS:
            self.stamps.append(time.perf_counter())
        elif msg.event in (JobEvent.FINISHED, JobEvent.ERROR, JobEvent.CANCELLED):
            if msg.event is JobEvent.ERROR:
                print(msg.detail, file=sys.stderr)
            self.done.set()

    def run(self, request, timeout: float = 600) -> tuple[float, float]:
        self.stamps.clear()
        self.done.clear()
        start = time.perf_counter()
        self.engine.submit(request)
        self.done.wait(timeout)
        return time.perf_counter() - start, steps_per_second(self.stamps)


def steps_per_second(stamps: list[float]) -> float:
    """Steps per second between the first and the last of ``stamps`` (one per step)."""
    return 0.0 if len(stamps) < 2 else (len(stamps) - 1) / (stamps[-1] - stamps[0])


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def bench_project_io() -> dict:
    from comic_studio.core.projectfile import load_project, save_project
    from comic_studio.core.sample_projects import make_big_project

    project, assets = make_big_project(pages=300, panels=1500, assets=200)
    with tempfile.TemporaryDirectory() as tmp, _state_dir(Path(tmp) / "state"):
        path = Path(tmp) / "big.comic"
        save_s, _ = _timed(save_project, path, project, assets)
        resave_s, _ = _timed(save_project, path, project, assets)
        load_s, (loaded, _) = _timed(load_project, path)
        size = path.stat().st_size
    assert len(loaded.pages) == 300
    return {
        "save_300_pages_1500_panels_s": round(save_s, 3),
        "resave_s": round(resave_s, 3),
        "load_s": round(load_s, 3),
        "file_mib": round(size / 2**20, 2),
        "target_s": 1.0,
        **_open_with_session_cache(),
    }


@contextlib.contextmanager
def _state_dir(folder: Path) -> Iterator[None]:
    """The app's state folder (session caches) in ``folder`` while the block runs."""
    before = os.environ.get("COMIC_STUDIO_STATE_DIR")
    os.environ["COMIC_STUDIO_STATE_DIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COMIC_STUDIO_STATE_DIR"]
        else:
            os.environ["COMIC_STUDIO_STATE_DIR"] = before


def _noise_png(seed: int, side: int) -> bytes:
    """A ``side``×``side`` RGB PNG of random pixels, stored uncompressed (a render's size without
    the cost of compressing it here)."""
    import random
    import zlib

    rows = random.Random(seed).randbytes(side * (3 * side + 1))
    rows = b"".join(b"\x00" + rows[y * (3 * side + 1) + 1 : (y + 1) * (3 * side + 1)] for y in range(side))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes((8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")


def _open_with_session_cache(renders: int = 340, side: int = 1024) -> dict:
    """What opening a document costs with its copy in the session cache (core/session_cache.py),
    on a project of about 1 GiB of renders (``renders`` × 3 MiB): Document.open against reading
    the file in place, as before. Right after the file was written, so both read from the page
    cache: the copy's price here is writing the bytes once more."""
    from comic_studio.core.document import Document
    from comic_studio.core.model import PanelResult
    from comic_studio.core.projectfile import load_project, save_project
    from comic_studio.core.sample_projects import make_big_project

    project, assets = make_big_project(pages=renders // 5, panels=renders, assets=20, results_per_panel=1)
    panels = [panel for page in project.pages for panel in page.panels]
    for n, panel in enumerate(panels):
        digest = assets.add(_noise_png(n, side), validate_image=False)
        panel.results = [
            PanelResult(id=f"r{n}", asset=digest, backend="storyboard", seed=n, created_at="2026-12-06T00:00:00+00:00")
        ]
        panel.current_result = f"r{n}"
    with tempfile.TemporaryDirectory() as tmp, _state_dir(Path(tmp) / "state"):
        path = Path(tmp) / "renders.comic"
        save_project(path, project, assets)
        del assets
        size = path.stat().st_size
        in_place = min(_timed(load_project, path)[0] for _ in range(3))
        staged = []
        for _ in range(3):
            seconds, doc = _timed(Document.open, path)
            staged.append(seconds)
            cache_bytes = sum(f.stat().st_size for f in doc.assets.cache.folder.rglob("*") if f.is_file())
            doc.assets.cache.close()
        copy_s = min(staged) - in_place
    return {
        "renders_file_mib": round(size / 2**20),
        "renders_open_in_place_s": round(in_place, 3),
        "renders_open_with_session_copy_s": round(min(staged), 3),
        "session_copy_s": round(copy_s, 3),
        "session_copy_mib_per_s": round(size / 2**20 / copy_s) if copy_s > 0 else None,
        "session_cache_disk_mib": round(cache_bytes / 2**20),
    }


def _export_child(kind: str, pages: int, dpi: int, out: str) -> None:
    """Runs in a child process so its peak RSS is the export's own."""
    from comic_studio.core.sample_projects import make_big_project
    from comic_studio.export import export_pdf, export_pngs

    project, assets = make_big_project(pages=pages, panels=pages * 5, assets=min(200, pages * 5))
    start = time.perf_counter()
    if kind == "pdf":
        export_pdf(project, assets, Path(out) / "book.pdf", dpi=dpi)
    else:
        export_pngs(project, assets, Path(out) / "pages", dpi=dpi)
    seconds = time.perf_counter() - start
    peak_kib = rlimit.getrusage(rlimit.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024}))


def _run_export(kind: str, pages: int, dpi: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.run import _export_child; _export_child({kind!r}, {pages}, {dpi}, {tmp!r})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        if kind == "pdf":
            figures["file_mib"] = round((Path(tmp) / "book.pdf").stat().st_size / 2**20, 1)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}


def bench_export() -> dict:
    pdf = _run_export("pdf", 50, 300)
    png_small = _run_export("png", 20, 150)
    png = _run_export("png", 200, 150)
    return {
        "pdf_50_pages_300dpi_s": pdf["seconds"],
        "pdf_50_pages_peak_rss_mib": pdf["peak_rss_mib"],
        "pdf_50_pages_file_mib": pdf["file_mib"],
        "pdf_target_s": 20.0,
        "png_200_pages_150dpi_s": png["seconds"],
        "png_200_pages_peak_rss_mib": png["peak_rss_mib"],
        "png_20_pages_peak_rss_mib": png_small["peak_rss_mib"],
        "png_peak_growth_200_vs_20": round(png["peak_rss_mib"] / png_small["peak_rss_mib"], 2),
    }


def bench_parser() -> dict:
    from comic_studio.parsing.bench import bench_parser as run

    return run()


def bench_retrieval() -> dict:
    from comic_studio.poses.bench import bench_retrieval as run

    return run()


def bench_storyboard() -> dict:
    from comic_studio.backends.storyboard.bench import bench_storyboard as run

    return run()


def _json_of(cmd: list[str], env: dict | None = None, timeout: int = 900) -> dict:
    """Run a benchmark script that prints one JSON object (indented, or on its last line)."""
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}, check=True
    )
    out = proc.stdout.strip()
    return json.loads(out[out.index("{") :]) if out.startswith("{") else json.loads(out.splitlines()[-1])


def bench_gui() -> dict:
    offscreen = {"QT_QPA_PLATFORM": "offscreen"}
    starts = [_json_of([sys.executable, "-m", "comic_studio.ui.app", "--smoke-test"], offscreen) for _ in range(3)]
    heartbeat = _json_of(
        [sys.executable, "bench/gui_heartbeat.py", "--panels", "40", "--switch-interval", "1"], offscreen
    )
    warm = _json_of(
        [sys.executable, "bench/gui_heartbeat.py", "--panels", "40", "--switch-interval", "1", "--warm-up"], offscreen
    )
    return {
        "window_up_s_best_of_3": min(s["startup_s"] for s in starts),
        "torch_imported_at_start": any(s["torch_imported"] for s in starts),
        "window_target_s": 1.5,
        "render_all_40_cold": heartbeat,
        "render_all_40_warm": warm,
        "heartbeat_target_ms": 50,
    }


def bench_sdxl() -> dict:
    return _json_of([sys.executable, "bench/sdxl_vs_diffusers.py"])


def bench_consistent() -> dict:
    return _json_of([sys.executable, "bench/consistent.py"])


def bench_racig() -> dict:
    return _json_of([sys.executable, "bench/racig.py"])


def bench_train_lora() -> dict:
    return _json_of([sys.executable, "bench/train_lora.py"])


def bench_openclip() -> dict:
    return _json_of([sys.executable, "bench/openclip_poses.py"])


def bench_long_prompt() -> dict:
    return _json_of([sys.executable, "bench/long_prompt.py"])


_OVERLAY_CAST = (
    ("ana", "Ana", "#d0563b"),
    ("ben", "Ben", "#3b6fd0"),
    ("cid", "Cid", "#3f9a4a"),
    ("dee", "Dee", "#b8932e"),
)
_OVERLAY_ACTIONS = {1: "Ana runs down the pier", 2: "Ana hands Ben a brass key",
                    4: "the four friends argue around the table"}  # fmt: skip


def bench_pose_overlay(runs: int = 40, width: int = 800, height: int = 533) -> dict:
    """The canvas' poses-and-masks overlay (``compute_pose_overlay``, overlap matcher): ms per panel
    with 1, 2 and 4 characters, a new seed (so another pose pick and framing) every panel."""
    from comic_studio.generation.request import GenerationRequest, RequestCharacter
    from comic_studio.poses.staging.conditioning import StagingOptions
    from comic_studio.poses.staging.overlay import OVERLAY_SIDE, compute_pose_overlay

    options = StagingOptions(pose_matching="overlap")  # racig's defaults with the overlap matcher

    def panel(n: int, seed: int) -> GenerationRequest:
        cast = [RequestCharacter(id=i, name=name, colour=colour) for i, name, colour in _OVERLAY_CAST[:n]]
        return GenerationRequest(backend="racig", width=width, height=height, seed=seed, action=_OVERLAY_ACTIONS[n],
                                 characters=cast, actor_id="ana", backend_settings={"pose_matching": "overlap"})  # fmt: skip

    first_s, _ = _timed(compute_pose_overlay, panel(1, 0), options)  # builds the overlap index of the library
    out: dict[str, object] = {"panel_px": [width, height], "overlay_side_px": OVERLAY_SIDE, "runs": runs,
                              "matcher": "overlap", "first_panel_ms": round(first_s * 1e3, 2)}  # fmt: skip
    for n in (1, 2, 4):
        times_ms = sorted(_timed(compute_pose_overlay, panel(n, seed), options)[0] * 1e3 for seed in range(1, runs + 1))
        out[f"characters_{n}"] = {"median_ms": round(statistics.median(times_ms), 2),
                                  "p90_ms": round(times_ms[int(0.9 * (len(times_ms) - 1))], 2)}  # fmt: skip
    out["ratio_4_vs_1"] = round(out["characters_4"]["median_ms"] / out["characters_1"]["median_ms"], 2)
    return out


def bench_autolayout(scenes: int = 50, per_scene: int = 20) -> dict:
    """Auto-layout of a 1,000-beat story (one panel per beat, pages chosen by shot)."""
    import random

    from comic_studio.core.layout import auto_layout, page_format
    from comic_studio.core.model import Beat, ShotType

    rng = random.Random(11)
    shots = [ShotType.WIDE, ShotType.MEDIUM, ShotType.OVER_THE_SHOULDER, ShotType.CLOSE_UP, ShotType.ESTABLISHING]
    beats = [
        (
            f"scene-{s}",
            Beat(
                shot=ShotType.ESTABLISHING if k == 0 else rng.choice(shots),
                characters=rng.sample(["ana", "bo", "cy"], rng.randint(0, 3)),
                action=f"beat {s}.{k}",
            ),
        )
        for s in range(scenes)
        for k in range(per_scene)
    ]
    seconds, pages = _timed(auto_layout, beats, page_format("us-comic"))
    return {"beats": len(beats), "pages": len(pages), "seconds": round(seconds, 3), "target_s": 10.0}


def bench_tiny_sdxl() -> dict:
    """The tiny random-weight SDXL kit the tests render with: 4 steps at 64 px, after a warm-up."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    from comic_studio.generation.models.loading import load_sdxl_components, sdxl_source
    from comic_studio.testing.tiny import build_tiny_kit

    torch.set_num_threads(1)  # as the test session does
    with tempfile.TemporaryDirectory() as tmp:
        kit = build_tiny_kit(Path(tmp) / "tiny-kit")
        pipe = StableDiffusionXLPipeline(**load_sdxl_components(sdxl_source(kit.sdxl)))
        pipe.set_progress_bar_config(disable=True)
        pipe("warm up", num_inference_steps=1, height=64, width=64)
        seconds, _ = _timed(
            pipe, "a cat", num_inference_steps=4, height=64, width=64, generator=torch.Generator().manual_seed(0)
        )
    return {"steps": 4, "side_px": 64, "seconds": round(seconds, 3), "target_s": 2.0}


def _qt_session(tmp: str):
    """An offscreen QApplication and a StudioContext whose state and config live in ``tmp``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["COMIC_STUDIO_STATE_DIR"] = str(Path(tmp) / "state")
    os.environ["COMIC_STUDIO_CONFIG_DIR"] = str(Path(tmp) / "config")
    from PySide6.QtWidgets import QApplication

    from comic_studio.ui.context import StudioContext

    app = QApplication.instance() or QApplication([])
    return app, StudioContext()


def bench_pages_strip(pages: int = 60) -> dict:
    """The pages strip paints thumbnails a time budget per timer tick: the longest tick (GUI stall)."""
    from comic_studio.core import editing
    from comic_studio.ui.pages_strip import TICK_BUDGET_S, PagesStrip

    with tempfile.TemporaryDirectory() as tmp:
        _app, ctx = _qt_session(tmp)
        for _ in range(pages):
            editing.add_page(ctx.document, "grid-3x3")
        strip = PagesStrip(ctx)
        ticks = []
        while strip._pending:
            ticks.append(_timed(strip._paint_some)[0])
        strip.deleteLater()
    return {
        "pages": pages + 1,
        "ticks": len(ticks),
        "worst_tick_ms": round(max(ticks) * 1e3, 2),
        "budget_ms": TICK_BUDGET_S * 1e3,
        "target_ms": 50,
    }


def bench_canvas_resync() -> dict:
    """The page canvas on a nine-panel page with a balloon per panel: a full rebuild, and the resync
    after one balloon's text changed (only that balloon is lettered again)."""
    from comic_studio.core import editing
    from comic_studio.core.layout import bbox
    from comic_studio.ui.canvas import PageCanvas

    with tempfile.TemporaryDirectory() as tmp:
        _app, ctx = _qt_session(tmp)
        page = editing.add_page(ctx.document, "grid-3x3")
        ctx.select_page(page.id)
        for panel in page.panels:
            box = editing.Box(x=bbox(panel.shape).x + 5, y=bbox(panel.shape).y + 5, w=70, h=40)
            editing.add_balloon(ctx.document, panel.id, editing.BalloonKind.SPEECH, box, "Hello there, friend!")
        view = PageCanvas(ctx)
        full_s, _ = _timed(view.page_scene.sync, full=True)
        first = ctx.current_page.panels[0].balloons[0]
        one_s, _ = _timed(ctx.edit, editing.edit_balloon_text, first.id, "Changed!")
        view.deleteLater()
    return {
        "full_rebuild_ms": round(full_s * 1e3, 1),
        "one_balloon_edit_ms": round(one_s * 1e3, 1),
        "full_target_ms": 250,
        "one_target_ms": 100,
    }


def bench_outliner_parse(words: int = 200_000) -> dict:
    """The story outliner parsing a ~200k-word story on its worker thread: how late a 10 ms GUI timer
    fires meanwhile (the worst gap is the longest stall), until the parse is cancelled after 2 s."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    from comic_studio.parsing.bench import generate_story
    from comic_studio.ui.outliner import StoryOutliner

    with tempfile.TemporaryDirectory() as tmp:
        app, ctx = _qt_session(tmp)
        outliner = StoryOutliner(ctx, None)
        outliner.story_edit.setPlainText(generate_story(words))
        gaps: list[int] = []
        clock = QElapsedTimer()
        clock.start()
        last = [clock.elapsed()]

        def beat() -> None:
            now = clock.elapsed()
            gaps.append(now - last[0])
            last[0] = now

        heartbeat = QTimer(interval=10, timeout=beat)
        heartbeat.start()
        outliner.parse()
        deadline = time.monotonic() + 2.0
        while outliner.worker.is_running() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.001)
        outliner.cancel_button.click()
        cancelled_at = time.monotonic()
        outliner.worker.wait(30_000)
        stop_s = time.monotonic() - cancelled_at
        heartbeat.stop()
        outliner.shutdown()
        outliner.deleteLater()
    return {
        "words": words,
        "ticks": len(gaps),
        "worst_gap_ms": max(gaps[2:] or [0]),
        "stop_after_cancel_s": round(stop_s, 3),
        "gap_target_ms": 250,
    }


def bench_llm() -> dict:
    from comic_studio.parsing.llm.bench import bench_llm as run

    return run()


def bench_plugin_start(plugins: int = 5, runs: int = 3) -> dict:
    """What the plugin import probe costs a fresh process's first backend look-up (the app's and the
    CLI's start-up): no user plugins, ``plugins`` new ones (probed in children), the same ones again
    (verdicts read from the cache: no child)."""
    from comic_studio.generation.plugin_loading import PROBE_CACHE_ENV
    from comic_studio.generation.registry import PLUGINS_DIR_ENV

    code = (
        "import time; t = time.perf_counter(); from comic_studio.generation.registry import available_backends, "
        "plugin_errors; n = len(available_backends()); assert not plugin_errors(), plugin_errors(); "
        "print(time.perf_counter() - t)"
    )
    source = (
        "from PIL import Image\nfrom comic_studio.generation.backend_api import GenerationBackend\n"
        "from comic_studio.generation.request import GenerationResult\n"
        "class B(GenerationBackend):\n    name = 'bench-{i}'\n"
        "    def generate(self, request, on_step=None):\n"
        "        return GenerationResult([Image.new('RGB', (16, 16))], request.seed, self.name)\n"
    )

    def lookup(env: dict[str, str]) -> float:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "plugins"
        folder.mkdir()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        env.update({PLUGINS_DIR_ENV: str(folder), PROBE_CACHE_ENV: str(Path(tmp) / "probes.json")})
        lookup(env)  # installed third-party entry points probed once, as on a first start
        none = min(lookup(env) for _ in range(runs))
        for i in range(plugins):
            (folder / f"bench_{i}.py").write_text(source.format(i=i), encoding="utf-8")
        cold = []
        for r in range(runs):
            for i in range(plugins):  # a new fingerprint: probed again
                os.utime(folder / f"bench_{i}.py", ns=(r + 1, r + 1))
            cold.append(lookup(env))
        warm = [lookup(env) for _ in range(runs)]
    return {
        "first_lookup_no_user_plugins_s": round(none, 3),
        f"first_lookup_{plugins}_new_plugins_probed_s": round(min(cold), 3),
        f"first_lookup_{plugins}_plugins_cached_verdicts_s": round(min(warm), 3),
    }


BENCHES = {
    "project_io": bench_project_io,
    "export": bench_export,
    "parser": bench_parser,
    "retrieval": bench_retrieval,
    "storyboard": bench_storyboard,
    "gui": bench_gui,
    "sdxl": bench_sdxl,
    "consistent": bench_consistent,
    "racig": bench_racig,
    "train_lora": bench_train_lora,
    "openclip": bench_openclip,
    "long_prompt": bench_long_prompt,
    "pose_overlay": bench_pose_overlay,
    "llm": bench_llm,
    "autolayout": bench_autolayout,
    "tiny_sdxl": bench_tiny_sdxl,
    "pages_strip": bench_pages_strip,
    "canvas_resync": bench_canvas_resync,
    "outliner_parse": bench_outliner_parse,
    "plugin_start": bench_plugin_start,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="compact JSON on one line")
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHES))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    for name in names:
        try:
            results[name] = BENCHES[name]()
        except Exception as exc:  # a broken bench is reported, the others still run
            results[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
