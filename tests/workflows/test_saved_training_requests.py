"""Training requests saved by an earlier version (tests/workflows/data/saved_training_requests.json,
written before the requests shared their picture manifest) still load, dump back to the same JSON,
(with the defaults of fields added since, the old behaviour) and their pictures still decode and match their hashes; a tampered picture is still refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from comic_studio.core.errors import ComicStudioError
from comic_studio.workflows.anime_training_jobs import AnimeTrainingRequest
from comic_studio.workflows.identity_jobs import IdentityTrainingRequest
from comic_studio.workflows.training_jobs import TrainingRequest

SAVED = json.loads((Path(__file__).parent / "data" / "saved_training_requests.json").read_text("utf-8"))
MODELS = {"train-lora": TrainingRequest, "train-identity": IdentityTrainingRequest,
          "train-anime-adapter": AnimeTrainingRequest}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_a_saved_request_loads_and_dumps_back_the_same(kind):
    request = MODELS[kind].from_dict(copy.deepcopy(SAVED[kind]))
    assert request.kind == kind and request.needs_device_memory and request.cancel_grace_s == 180.0
    assert _without_new_defaults(request.to_dict(), SAVED[kind], type(request)) == SAVED[kind]


# Fields added to the recipes since the file was saved: an old request gets their defaults (the old
# behaviour), and nothing else of it changes.
NEW_RECIPE_FIELDS = {"train_text_encoder": False, "text_encoder_learning_rate": 5e-6,
                     "text_encoder_weight_decay": 1e-3}  # fmt: skip


def _without_new_defaults(dumped: dict, saved: dict, model: type) -> dict:
    recipe = dumped.get("recipe")
    if isinstance(recipe, dict):
        for key, default in NEW_RECIPE_FIELDS.items():
            if key not in saved.get("recipe", {}) and key in recipe:
                assert recipe.pop(key) == default, (model.__name__, key)
    return dumped


def test_a_saved_lora_request_rebuilds_its_plan():
    request = TrainingRequest.from_dict(SAVED["train-lora"])
    plan = request.plan()
    assert [p.caption for p in plan.pictures] == ["sks woman, smiling", "sks woman, profile"]
    assert [p.digest for p in plan.pictures] == [p["sha256"] for p in SAVED["train-lora"]["pictures"]]
    assert plan.pictures[0].image.getpixel((0, 0)) == (200, 150, 120)
    assert request.manifest() == [(p["sha256"], p["caption"]) for p in SAVED["train-lora"]["pictures"]]
    assert request.label == "Train LoRA · Mara" and request.recipe.seed == 123
    assert plan.class_prompt == "a photo of a woman" and str(plan.checkpoint) == "/state/loras/p1/c1/checkpoint"


def test_a_saved_identity_request_rebuilds_its_plan():
    request = IdentityTrainingRequest.from_dict(SAVED["train-identity"])
    plan = request.plan()
    assert [a for a, _ in plan.photos] == [p["asset"] for p in SAVED["train-identity"]["photos"]]
    assert plan.photos[1][1].getpixel((0, 0)) == (90, 60, 40)
    assert request.label == "Train identity · Emma" and request.face_encoder == "/vit"


def test_a_saved_anime_request_names_its_folders():
    request = AnimeTrainingRequest.from_dict(SAVED["train-anime-adapter"])
    assert request.images == "/pictures" and request.resume and request.device == "cpu"
    assert request.label == "Train AnimeAdapter · weights" and request.checkpoint.parent == Path("/weights")


@pytest.mark.parametrize(("kind", "field", "where"), [("train-lora", "pictures", "cannot train 'Mara': training picture 2"),
                                                      ("train-identity", "photos", "cannot learn 'Emma'.*face photo 2")])  # fmt: skip
def test_a_tampered_saved_picture_is_refused(kind, field, where):
    data = copy.deepcopy(SAVED[kind])
    data[field][1]["png"] = data[field][0]["png"]  # another picture under picture 2's hash
    with pytest.raises(ComicStudioError, match=f"{where}.* does not match its hash"):
        MODELS[kind].from_dict(data).plan()
    data[field][1]["png"] = "data:image/png;base64,AAAA"
    with pytest.raises(ComicStudioError, match=where):
        MODELS[kind].from_dict(data).plan()
    data[field][1]["extra"] = 1
    with pytest.raises(ValueError, match="extra"):
        MODELS[kind].from_dict(data)
