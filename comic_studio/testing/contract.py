"""The contract every generation backend passes, directly and through the :class:`Engine`.

A backend's tests run it by subclassing :class:`BackendContract` (the subclass name must start with
``Test`` so pytest collects it); the fixtures come from the ``comic_studio.testing.plugin`` pytest
plugin, which an installed Comic Studio registers by itself::

    import pytest
    from comic_studio.testing.contract import BackendContract

    class TestMyBackendContract(BackendContract):
        backend_name = "my-backend"

        @pytest.fixture
        def quick_settings(self):
            return {"steps": 2}

Required hooks (a test of a subclass without them fails, naming what is missing):

- :attr:`backend_name`: the name the backend is installed (or registered) under.
- :meth:`quick_settings`: a fixture returning the backend settings that make a render quick (``{}``
  when the defaults already are). It may use other fixtures, e.g. ``tiny_kit`` for diffusion models.

Optional hooks: :attr:`backend_target` (a class or ``"package.module:Class"`` that the contract
registers for its tests, when the backend is not installed through its entry point),
:meth:`make_request` (the request every test renders), :meth:`invalid_settings` (bad settings and
the field the error must name), :attr:`cancel_after` and :attr:`reports_heads`.
"""

from __future__ import annotations

import io
import threading
from typing import Any, ClassVar

import pytest
from PIL import Image, ImageChops

from comic_studio.core.model import ShotType
from comic_studio.generation.backend_api import BackendSettingsError, GenerationBackend
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent, JobMessage
from comic_studio.generation.registry import BackendTarget, get_backend, register_backend, unregister_backend
from comic_studio.generation.request import Cancelled, GenerationRequest, GenerationResult, RequestCharacter

REQUIRED_HOOKS = ("backend_name", "quick_settings")


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


class BackendContract:
    backend_name: ClassVar[str] = ""
    """Required: the backend's installed (or registered) name."""
    backend_target: ClassVar[BackendTarget | None] = None
    """Optional: registered under :attr:`backend_name` for the subclass's tests, then unregistered."""
    cancel_after: ClassVar[int] = 1
    """``on_step`` answers True this many times, then False: the backend must stop right there."""
    reports_heads: ClassVar[bool] = True
    """Whether results place every request character (``GenerationResult.heads``, where balloon
    tails aim). False for a backend that cannot know where it drew anyone: its results then carry
    no heads at all."""

    # ------------------------------------------------------------------ hooks

    @pytest.fixture
    def quick_settings(self) -> dict[str, Any]:
        """Required: the backend settings that make a render quick (a fixture; may use others)."""
        pytest.fail(_missing_message(type(self), ["quick_settings"]), pytrace=False)

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        """A small request with two characters in an interaction, quick to render: the quick
        settings, overlaid with ``overrides["backend_settings"]`` if given."""
        fields: dict[str, Any] = dict(
            backend=self.backend_name,
            width=160,
            height=120,
            seed=seed,
            prompt="Ana hands Ben a brass key on a windy pier",
            setting="a wooden pier",
            time_of_day="dusk",
            action="Ana hands Ben a brass key",
            shot=ShotType.MEDIUM,
            characters=[
                RequestCharacter(id="ana", name="Ana", colour="#d0563b", description="green raincoat"),
                RequestCharacter(id="ben", name="Ben", colour="#3b6fd0", description="grey sweater"),
            ],
            actor_id="ana",
            target_id="ben",
            panel_id="contract-panel",
        )
        settings = {**self._quick_settings, **overrides.pop("backend_settings", {})}
        fields.update(overrides, backend_settings=settings)
        return GenerationRequest(**fields)

    def make_backend(self) -> GenerationBackend:
        return get_backend(self.backend_name)

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        """(settings, field the error must name): an unknown name plus one bad value per declared
        setting, derived from the backend's schema."""
        cases: list[tuple[dict[str, Any], str]] = [({"no_such_setting_xyz": 1}, "no_such_setting_xyz")]
        for key, spec in self.make_backend().settings_schema().items():
            kind = spec["type"]
            if kind in ("int", "float"):
                cases.append(({key: "many"}, key))
                if spec.get("max") is not None:
                    cases.append(({key: spec["max"] + 1}, key))
            elif kind == "bool":
                cases.append(({key: "yes"}, key))
            elif kind == "choice":
                cases.append(({key: "surely-not-a-choice"}, key))
            elif kind == "str":
                cases.append(({key: 12}, key))
        return cases

    # ------------------------------------------------------------------ wiring

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _contract_backend(cls):
        """Checks the required hooks (one clear error instead of a confusing failure per test) and
        registers :attr:`backend_target` for the class's tests."""
        missing = [hook for hook in REQUIRED_HOOKS if not _provides(cls, hook)]
        if missing:
            pytest.fail(_missing_message(cls, missing), pytrace=False)
        if cls.backend_target is None:
            yield
            return
        register_backend(cls.backend_name, cls.backend_target)
        yield
        unregister_backend(cls.backend_name)

    @pytest.fixture(autouse=True)
    def _contract_settings(self, quick_settings: dict[str, Any]) -> None:
        self._quick_settings = dict(quick_settings)  # make_request is a plain method: it reads them here

    # ------------------------------------------------------------------ helpers

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        backend = self.make_backend()
        request = request.model_copy(update={"backend_settings": backend.validate_settings(request.backend_settings)})
        return backend.generate(request, on_step)

    def run_in_engine(
        self, engine: Engine, request: GenerationRequest, cancel_at_progress: int | None = None
    ) -> list[JobMessage]:
        got: list[JobMessage] = []
        done = threading.Event()
        job_id: list[str] = []
        ready = threading.Event()

        def on_message(msg: JobMessage) -> None:
            ready.wait(5)  # QUEUED arrives before submit() returns the id
            if job_id and msg.job_id != job_id[0] and msg.event is not JobEvent.QUEUED:
                return
            got.append(msg)
            progress = [m for m in got if m.event is JobEvent.PROGRESS]
            if (
                cancel_at_progress is not None
                and msg.event is JobEvent.PROGRESS
                and len(progress) == cancel_at_progress
            ):
                engine.cancel(msg.job_id)  # from the worker thread, inside on_step: deterministic
            if msg.event.is_final:
                done.set()

        unsubscribe = engine.subscribe(on_message)
        try:
            ready.set()
            job_id.append(engine.submit(request))
            assert done.wait(120), f"{self.backend_name}: the job did not finish in 120 s"
        finally:
            unsubscribe()
        return got

    # ------------------------------------------------------------------ the contract, directly

    def test_deterministic_at_a_seed(self):
        a = self.generate(self.make_request(seed=11))
        b = self.generate(self.make_request(seed=11))
        assert same_pixels(a.image, b.image), "same request and seed must give the same image"
        assert a.heads == b.heads

    def test_different_seeds_differ(self):
        a = self.generate(self.make_request(seed=1))
        b = self.generate(self.make_request(seed=2))
        assert not same_pixels(a.image, b.image), "a different seed must give a different image"

    def test_steps_are_reported_in_order(self):
        calls: list[tuple[int, int]] = []
        self.generate(self.make_request(), lambda step, total, preview=None: calls.append((step, total)) is None)
        assert len(calls) >= 2, "report at least two steps so a job can be cancelled mid-run"
        steps = [s for s, _ in calls]
        assert steps == sorted(steps) and len({t for _, t in calls}) == 1
        assert steps[0] >= 0 and steps[-1] <= calls[0][1]

    def test_cancel_mid_run_stops_within_one_step(self):
        answers: list[bool] = []

        def on_step(step: int, total: int, preview=None) -> bool:
            answers.append(len(answers) < self.cancel_after)
            return answers[-1]

        with pytest.raises(Cancelled):
            self.generate(self.make_request(), on_step)
        assert answers.count(False) == 1 and answers[-1] is False, "no on_step call after it returned False"
        assert len(answers) == self.cancel_after + 1

    def test_invalid_settings_name_the_field(self):
        backend = self.make_backend()
        for settings, field in self.invalid_settings():
            with pytest.raises(BackendSettingsError) as info:
                backend.validate_settings(settings)
            assert info.value.field == field and repr(field) in str(info.value), settings
            # generate() checks too: a request built by hand must not slip past validation.
            with pytest.raises(BackendSettingsError):
                backend.generate(self.make_request(backend_settings=settings))

    def test_request_round_trips_through_json_and_replays(self):
        # Every setting spelled out (defaults overlaid with the hook's), as a stored result holds them.
        settings = {**self.make_backend().default_settings(), **self.make_request().backend_settings}
        request = self.make_request(seed=99, backend_settings=settings)
        back = GenerationRequest.from_json(request.to_json())
        assert back == request
        assert GenerationRequest.from_dict(request.to_dict()) == request
        assert same_pixels(self.generate(request).image, self.generate(back).image)

    def test_result_metadata_is_complete(self):
        backend = self.make_backend()
        request = self.make_request(seed=5)
        result = self.generate(request)
        assert result.backend == self.backend_name and result.seed == 5
        assert result.settings == backend.validate_settings(request.backend_settings), (
            "the effective settings, all of them"
        )
        assert result.images and result.image.size == (request.width, request.height)
        if not self.reports_heads:
            assert result.heads == [], "reports_heads is False: no head placements, not partial ones"
            return
        assert sorted(h.character_id for h in result.heads) == sorted(c.id for c in request.characters)
        for head in result.heads:
            assert head.head is not None and all(0 <= c <= 1 for c in head.head)
            assert 0 <= head.head_radius <= 1

    # ------------------------------------------------------------------ the contract, through the engine

    def test_engine_runs_it_like_a_direct_call(self):
        request = self.make_request(seed=21)
        direct = self.generate(request)
        with Engine() as engine:
            got = self.run_in_engine(engine, request)
        events = [m.event for m in got]
        assert events[:2] == [JobEvent.QUEUED, JobEvent.STARTED] and events[-1] is JobEvent.FINISHED, events
        assert set(events[2:-1]) <= {JobEvent.PROGRESS}
        final = got[-1]
        assert same_pixels(Image.open(io.BytesIO(final.png)), direct.image)
        assert final.result.heads == direct.heads and final.result.settings == direct.settings

    def test_engine_cancels_it_mid_run(self):
        with Engine() as engine:
            got = self.run_in_engine(engine, self.make_request(), cancel_at_progress=1)
            assert got[-1].event is JobEvent.CANCELLED, [m.event for m in got]
            assert [m.event for m in got].count(JobEvent.PROGRESS) == 1
            # The worker is still good for the next job.
            after = self.run_in_engine(engine, self.make_request(seed=3))
            assert after[-1].event is JobEvent.FINISHED

    def test_engine_refuses_invalid_settings_synchronously(self):
        settings, field = self.invalid_settings()[-1]
        with Engine() as engine:
            with pytest.raises(BackendSettingsError, match=repr(field)):
                engine.submit(self.make_request(backend_settings=settings))
            assert engine.pending() == []


def _provides(cls: type, hook: str) -> bool:
    if hook == "backend_name":
        return bool(getattr(cls, "backend_name", ""))
    # A fixture hook is provided when a subclass defines its own, not the contract's placeholder.
    return next(klass for klass in cls.__mro__ if hook in vars(klass)) is not BackendContract


def _missing_message(cls: type, hooks: list[str]) -> str:
    how = {
        "backend_name": 'backend_name = "the-backend-name"',
        "quick_settings": "@pytest.fixture\n    def quick_settings(self): return {...settings that render quickly...}",
    }
    lines = "\n    ".join(how[h] for h in hooks)
    return (
        f"{cls.__name__} runs the backend contract but does not provide the required hook(s) "
        f"{', '.join(hooks)}; add to the class:\n    {lines}"
    )
