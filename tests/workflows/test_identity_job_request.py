"""The identity training job's request: a self-contained JSON snapshot (photos with their project
asset and the hash of the pixels carried, recipe and seed, sample settings) that round-trips, is
checked against its hashes on the worker, and names its kind for the engine and the queue."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from comic_studio.core import character_edits as ce
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.generation.tasks import TaskRequest
from comic_studio.training.identity import IdentityRecipe
from comic_studio.training.samples import SampleSettings
from comic_studio.workflows.identity import plan_identity
from comic_studio.workflows.identity_jobs import (
    TRAIN_IDENTITY,
    IdentityTrainingRequest,
    identity_training_request,
)


@pytest.fixture
def plan(tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    doc = Document.new(title="Ids")
    emma = ce.add_character(doc, name="Emma")
    ce.add_reference(doc, emma.id, "face", Image.new("RGB", (96, 96), (200, 150, 120)))
    ce.add_reference(doc, emma.id, "face", Image.new("RGB", (96, 96), (90, 60, 40)))
    return plan_identity(doc, emma.id)


def test_the_request_round_trips_as_json_and_rebuilds_the_plan(plan):
    recipe = IdentityRecipe(steps=7, seed=123, alpha=0.6)
    request = identity_training_request(
        plan, recipe, model="tiny", face_encoder="/vit", samples=SampleSettings(every=3)
    )
    assert isinstance(request, TaskRequest) and request.kind == TRAIN_IDENTITY == "train-identity"
    assert request.label == "Train identity · Emma" and request.needs_device_memory
    data = json.loads(json.dumps(request.to_dict()))  # plain JSON
    again = IdentityTrainingRequest.from_dict(data)
    assert again == request and again.recipe.seed == 123 and again.samples.every == 3
    rebuilt = again.plan()
    assert [a for a, _ in rebuilt.photos] == [a for a, _ in plan.photos]  # the project assets, in order
    for (_a, mine), (_b, theirs) in zip(rebuilt.photos, plan.photos, strict=True):
        assert mine.tobytes() == theirs.tobytes()  # the same pixels
    assert rebuilt.checkpoint == plan.checkpoint and again.plan(decode=False).photos == ()


def test_a_photo_that_does_not_match_its_hash_is_refused(plan):
    request = identity_training_request(plan, IdentityRecipe())
    data = request.to_dict()
    data["photos"][0]["sha256"] = "0" * 64
    with pytest.raises(ComicStudioError, match="face photo 1 of 'Emma' does not match its hash"):
        IdentityTrainingRequest.from_dict(data).plan()
    data["photos"][0]["png"] = "data:image/png;base64,AAAA"
    with pytest.raises(ComicStudioError, match="cannot learn 'Emma'"):
        IdentityTrainingRequest.from_dict(data).plan()


def test_on_a_cluster_worker_the_run_keeps_its_checkpoint_where_the_worker_says(plan, tmp_path):
    """The cluster runs it with the checkpoint in the worker's own folder (a CheckpointedTask)."""
    from comic_studio.generation.tasks import CheckpointedTask

    request = identity_training_request(plan, IdentityRecipe(), resume=False)
    assert isinstance(request, CheckpointedTask) and request.checkpoint == str(plan.checkpoint)
    moved = request.with_checkpoint(str(tmp_path / "worker" / "checkpoint.safetensors"))
    assert moved.plan(decode=False).checkpoint == tmp_path / "worker" / "checkpoint.safetensors"
    assert moved.model_copy(update={"checkpoint": request.checkpoint}) == request  # nothing else changed
