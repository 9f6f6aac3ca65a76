"""GUI responsiveness while "Render all" runs: the worst lateness of a 10 ms heartbeat timer.

Builds a 40-panel project from a generated story (the real parser and auto-layout), shows the
panel inspector and the queue panel (and the page canvas when it is importable), then runs
"Render all" with the storyboard backend through the RenderService → Engine → EngineBridge path
while a 10 ms QTimer measures how late each tick fires. Prints JSON:

    {"panels": 40, "total_s": ..., "worst_ms": ..., "p99_ms": ..., "p50_ms": ..., "ticks": ...}

The target (issue 5) is a worst lateness under 50 ms. Usage:

    python bench/gui_heartbeat.py [--panels 40] [--pose-matching auto|minilm|overlap] [--no-canvas]
                                  [--explain [--explain-threshold 20]]

``turn_cpu_worst_ms`` / ``turn_wall_worst_ms``: the longest event-loop turn of the render in the GUI
thread's CPU time and in wall time; a turn far longer in wall time than in CPU time waited for a
core or the interpreter lock (machine load, other threads), it did not work.

``--explain`` adds ``"explain"``: per phase (warm_up, render), the stacks of the GUI thread and of
the busy threads sampled while a tick was late (``bench/stall_explain.py``), most frequent first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 10

_ACTIONS = [
    "{a} walked along the harbour wall.",
    "{b} waved from the lighthouse door.",
    "{a} climbed the spiral stairs.",
    "{b} handed {a} a rusty key.",
    "{a} opened the old chest.",
    "{b} looked out at the storm.",
    "{a} lit the great lamp.",
    "{b} sat down by the window.",
]


def make_story(beats: int) -> str:
    """A story of about ``beats`` beats: scenes of four actions, some with a line of dialogue."""
    paragraphs: list[str] = []
    for i in range(beats):
        if i % 4 == 0:
            paragraphs.append(f"Scene {i // 4 + 1}: The lighthouse, {'night' if i % 8 else 'morning'}")
        a, b = ("Mara", "Theo") if i % 2 == 0 else ("Theo", "Mara")
        line = _ACTIONS[i % len(_ACTIONS)].format(a=a, b=b)
        if i % 3 == 0:
            line += f' "We have to hurry," {a} said.'
        paragraphs.append(line)
    return "\n\n".join(paragraphs)


def build_document(panels: int, pose_matching: str):
    """The smallest generated story whose layout has at least ``panels`` panels."""
    from comic_studio.core.model import Character
    from comic_studio.workflows.story import story_to_document

    cast = [Character(name="Mara", pronouns="she", description="curly auburn hair, green raincoat"),
            Character(name="Theo", pronouns="he", description="short black hair, round glasses")]  # fmt: skip
    # Some sentences split into two beats (action + dialogue), so grow the story one beat at a time.
    beats = max(1, panels * 3 // 4)
    while True:
        doc = story_to_document(make_story(beats), [c.model_copy() for c in cast], title="Heartbeat")
        count = sum(len(p.panels) for p in doc.project.pages)
        if count >= panels:
            break
        beats += 1
    for page in doc.project.pages:
        for panel in page.panels:
            panel.backend_settings = {"pose_matching": pose_matching}
    return doc, count


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=40)
    parser.add_argument("--pose-matching", default="auto", choices=["auto", "minilm", "overlap"])
    parser.add_argument("--no-canvas", action="store_true", help="do not show the page canvas")
    parser.add_argument(
        "--warm-up", action="store_true", help="render one panel before measuring (loads the backend's models first)"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval in ms (Python's GIL hand-over; default: the app's, 1 ms)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument(
        "--no-native-preload",
        action="store_true",
        help="for comparison: import torch the old way (its libraries mapped under the interpreter lock)",
    )
    parser.add_argument(
        "--no-app-warm-up",
        action="store_true",
        help="for comparison: skip the warm-up the app runs after start (the first job then imports the stack)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="sample every thread's stack while a tick is late (JSON 'explain')"
    )
    parser.add_argument("--explain-threshold", type=float, default=20.0, help="lateness (ms) that --explain samples")
    parser.add_argument(
        "--no-gui-collector",
        action="store_true",
        help="for comparison: every thread collects reference cycles, as before ui/garbage_collector.py",
    )
    args = parser.parse_args(argv)

    if args.no_native_preload:
        import comic_studio.generation.engine as engine_module
        import comic_studio.poses.retrieval as retrieval_module

        for module in (engine_module, retrieval_module):
            module.preload_torch_stack = lambda: []  # type: ignore[attr-defined]

    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    # The app's own set-up (ui/app.py): its interpreter-lock switch interval, the wheel guard and the
    # GUI thread's garbage collector.
    from comic_studio.ui.app import create_application
    from comic_studio.ui.garbage_collector import gui_thread_collector

    app = create_application(sys.argv[:1])
    if args.no_gui_collector:
        gui_thread_collector().uninstall()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1000)
    from comic_studio.ui.context import StudioContext
    from comic_studio.ui.inspector import PanelInspector
    from comic_studio.ui.queue_panel import QueuePanel
    from comic_studio.ui.render_service import RenderService

    if not args.no_gui_collector:
        gui_thread_collector().settle()  # as the app's start_window does once its modules are imported

    # How long the GUI thread spends handling each engine message (recording, lettering, the
    # widgets' refresh): the part of a stall our code is responsible for, whatever the machine load.
    handler_ms: list[float] = []
    handler_cpu_ms: list[float] = []  # CPU time of the GUI thread: excludes waiting for a core/the GIL
    handle = RenderService._on_message

    def timed_handler(self, msg) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        handle(self, msg)
        handler_ms.append((time.perf_counter() - t0) * 1000)
        handler_cpu_ms.append((time.thread_time() - c0) * 1000)

    RenderService._on_message = timed_handler

    doc, panel_count = build_document(args.panels, args.pose_matching)
    ctx = StudioContext(doc)
    service = RenderService(ctx)
    widgets = [PanelInspector(ctx, service), QueuePanel(ctx, service)]
    canvas_shown = False
    if not args.no_canvas:
        try:
            from comic_studio.ui.canvas import PageCanvas

            canvas = PageCanvas(ctx)
            canvas.follow_renders(service)  # live previews, progress and badges in the panels
            widgets.append(canvas)
            canvas_shown = True
        except Exception as exc:  # the canvas is built in parallel; measure without it if absent
            print(f"(page canvas not shown: {type(exc).__name__}: {exc})", file=sys.stderr)
    for w in widgets:
        w.resize(500, 700)
        w.show()
    # The inspector follows a panel on the first page, as a user would have it.
    ctx.select_panels([doc.project.pages[0].panels_in_order()[0].id])

    lateness: list[float] = []
    stamps: list[float] = []  # seconds on the heartbeat clock, one per lateness value
    clock = QElapsedTimer()
    last = [0.0]
    sampler = None
    if args.explain:
        from bench.stall_explain import StallSampler

        sampler = StallSampler(TICK_MS, args.explain_threshold)

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if last[0]:
            lateness.append(max(0.0, now - last[0] - TICK_MS))
            stamps.append(now / 1000)
        last[0] = now
        if sampler is not None:
            sampler.tick()

    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(TICK_MS)
    heartbeat.timeout.connect(tick)

    if args.warm_up:
        service.render_panels([doc.project.pages[0].panels_in_order()[0].id])
        while not service.is_idle():
            app.processEvents()
            time.sleep(0.001)

    # Baseline: the idle heartbeat, so the render figures can be read against it.
    clock.start()
    heartbeat.start()
    idle_until = time.monotonic() + 0.5
    while time.monotonic() < idle_until:
        app.processEvents()
        time.sleep(0.001)
    idle = list(lateness)
    lateness.clear()
    stamps.clear()
    last[0] = 0.0

    # As the app does 1.5 s after its window shows: load the pose matcher (and torch) in the
    # background while the author looks around; measured on its own.
    warm_up_s = None
    warm_up_lateness: list[float] = []
    if not args.no_app_warm_up:
        from comic_studio.ui.app import warm_up_in_background

        if sampler is not None:
            sampler.phase("warm_up")
        t0 = time.perf_counter()
        thread = warm_up_in_background()
        while thread.is_alive():
            app.processEvents()
            time.sleep(0.001)
        warm_up_s = round(time.perf_counter() - t0, 2)
        warm_up_lateness = list(lateness)
        lateness.clear()
        stamps.clear()
        last[0] = 0.0
    render_start = clock.nsecsElapsed() / 1e9
    if sampler is not None:
        sampler.phase("render")

    # Load-independent figures: how often the jobs' followers re-synced, and the GUI thread's own
    # CPU time over the render (the wall-clock ticks above also count waiting for a core or the lock).
    jobs_changed: list[int] = []
    service.jobs_changed.connect(lambda: jobs_changed.append(1))
    gui_cpu0 = time.thread_time()
    started = time.perf_counter()
    job_ids = service.render_all(only_missing=False)
    deadline = time.monotonic() + args.timeout
    first_done_at: float | None = None  # heartbeat clock (s) when the first panel was recorded
    # Per event-loop turn: the GUI thread's CPU time against its wall time. A late tick whose turn
    # used little CPU was waiting (for a core, or for the interpreter lock), not working.
    turn_cpu_ms: list[float] = []
    turn_wall_ms: list[float] = []
    while not service.is_idle() and time.monotonic() < deadline:
        c0, w0 = time.thread_time(), time.perf_counter()
        app.processEvents()
        turn_cpu_ms.append((time.thread_time() - c0) * 1000)
        turn_wall_ms.append((time.perf_counter() - w0) * 1000)
        time.sleep(0.001)
        if first_done_at is None and len(service.jobs()) < len(job_ids):  # a finished job leaves the list
            first_done_at = clock.nsecsElapsed() / 1e9
    total = time.perf_counter() - started
    gui_cpu_s = time.thread_time() - gui_cpu0
    heartbeat.stop()
    if sampler is not None:
        sampler.stop()

    rendered = sum(1 for page in doc.project.pages for p in page.panels if p.result())
    failed = [j.error for j in service.jobs() if j.state == "error"]
    service.shutdown()
    report = {
        "panels": panel_count,
        "jobs": len(job_ids),
        "rendered": rendered,
        "failed": len(failed),
        "pose_matching": args.pose_matching,
        "warm_up": args.warm_up,
        "switch_interval_ms": round(sys.getswitchinterval() * 1000, 2),
        "canvas_shown": canvas_shown,
        "total_s": round(total, 2),
        "per_panel_s": round(total / max(1, len(job_ids)), 3),
        "ticks": len(lateness),
        "worst_ms": round(max(lateness, default=0.0), 1),
        "p99_ms": round(percentile(lateness, 0.99), 1),
        "p50_ms": round(percentile(lateness, 0.50), 1),
        "over_50ms": sum(1 for v in lateness if v > 50),
        "worst_at_s": round(stamps[lateness.index(max(lateness))] - render_start, 2) if lateness else None,
        "idle_worst_ms": round(max(idle, default=0.0), 1),
        "app_warm_up": not args.no_app_warm_up,
        "warm_up_s": warm_up_s,
        "warm_up_worst_ms": round(max(warm_up_lateness, default=0.0), 1),
        # The cold start of the stack (imports, model loads) happens inside the first job.
        "first_job_s": round(first_done_at - render_start, 2) if first_done_at else None,
        "first_job_worst_ms": round(
            max((v for v, t in zip(lateness, stamps) if first_done_at and t <= first_done_at), default=0.0), 1
        ),
        "later_worst_ms": round(
            max((v for v, t in zip(lateness, stamps) if first_done_at and t > first_done_at), default=0.0), 1
        ),
        "gui_collector": not args.no_gui_collector,
        "gui_collections": list(gui_thread_collector().collections),
        "gui_collection_worst_ms": round(gui_thread_collector().longest_s * 1000, 1),
        "jobs_changed": len(jobs_changed),
        "gui_cpu_s": round(gui_cpu_s, 2),
        "turn_cpu_worst_ms": round(max(turn_cpu_ms, default=0.0), 1),
        "turn_wall_worst_ms": round(max(turn_wall_ms, default=0.0), 1),
        "handler_worst_ms": round(max(handler_ms, default=0.0), 1),
        "handler_p99_ms": round(percentile(handler_ms, 0.99), 1),
        "handler_cpu_worst_ms": round(max(handler_cpu_ms, default=0.0), 1),
        "handler_cpu_p99_ms": round(percentile(handler_cpu_ms, 0.99), 1),
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "torch_loaded": "torch" in sys.modules,
        "native_preload": not args.no_native_preload,
    }
    if sampler is not None:
        report["explain"] = sampler.report()
    if failed:
        report["first_error"] = failed[0]
    print(json.dumps(report))
    return 0 if rendered == len(job_ids) else 1


if __name__ == "__main__":
    sys.exit(main())
