"""Named pretrained weights: local files, torchvision names, published files, timm names."""
from __future__ import annotations

import pytest
import torch

from active_learning.errors import WeightsError
from active_learning.files.pretrained import (
    PublishedCheckpoint,
    describe_spec,
    hub_checkpoint_path,
    load_named_state,
    spec_kind,
)
from weights_cache import distinct_values, write_hub_checkpoint, write_timm_cache

STATE = {"conv.weight": torch.arange(6.0).reshape(2, 3), "conv.bias": torch.tensor([7.0, 8.0])}
REDUCED_FC = PublishedCheckpoint("vgg16_reducedfc.pth", "https://example.org/vgg16_reducedfc.pth",
                                 "amdegroot/ssd.pytorch")
VGG_FEATURES = "VGG16_Weights.IMAGENET1K_FEATURES"
VGG_FEATURES_FILE = "vgg16_features-amdegroot-88682ab5.pth"   # the file name of torchvision's URL


def assert_same(state, expected):
    assert sorted(state) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_a_local_file_loads_without_its_wrappers(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {f"module.{key}": value for key, value in STATE.items()}}, path)
    assert spec_kind(str(path)) == "file"
    assert_same(load_named_state(str(path), flag="--weights"), STATE)


def test_a_torchvision_name_is_the_file_torch_hub_caches():
    assert hub_checkpoint_path(VGG_FEATURES_FILE).parent.name == "checkpoints"
    write_hub_checkpoint(VGG_FEATURES_FILE, STATE)
    assert spec_kind(VGG_FEATURES) == "torchvision"
    assert_same(load_named_state(VGG_FEATURES, flag="--weights-backbone"), STATE)


def test_a_torchvision_name_not_cached_offline_says_where_to_get_it():
    with pytest.raises(WeightsError) as error:
        load_named_state("VGG16_Weights.IMAGENET1K_V1", flag="--weights-backbone")
    message = str(error.value)
    assert "\n" not in message
    for part in ("--weights-backbone VGG16_Weights.IMAGENET1K_V1",
                 "https://download.pytorch.org/models/vgg16-397923af.pth",
                 str(hub_checkpoint_path("vgg16-397923af.pth")), "--from-scratch",
                 "ACTIVE_LEARNING_OFFLINE"):
        assert part in message


def test_an_unknown_torchvision_name_is_one_message():
    with pytest.raises(WeightsError, match="torchvision has no such weights"):
        load_named_state("VGG16_Weights.NO_SUCH_THING", flag="--weights")


def test_a_published_file_is_found_in_the_cache_by_its_name():
    write_hub_checkpoint("vgg16_reducedfc.pth", STATE)
    assert spec_kind("vgg16_reducedfc.pth", [REDUCED_FC]) == "published"
    assert describe_spec("vgg16_reducedfc.pth", [REDUCED_FC]) == \
        "amdegroot/ssd.pytorch's vgg16_reducedfc.pth"
    assert_same(load_named_state("vgg16_reducedfc.pth", flag="--basenet", published=[REDUCED_FC]),
                STATE)


def test_a_published_file_not_cached_offline_names_its_url_and_source():
    with pytest.raises(WeightsError) as error:
        load_named_state("vgg16_reducedfc.pth", flag="--basenet", published=[REDUCED_FC])
    message = str(error.value)
    for part in ("amdegroot/ssd.pytorch", REDUCED_FC.url,
                 str(hub_checkpoint_path("vgg16_reducedfc.pth")), "--from-scratch"):
        assert part in message


def test_a_published_file_is_downloaded_into_the_cache_when_allowed(tmp_path, monkeypatch):
    source = tmp_path / "served.pth"
    torch.save(STATE, source)
    checkpoint = PublishedCheckpoint("served.pth", source.as_uri(), "a test server")
    monkeypatch.delenv("ACTIVE_LEARNING_OFFLINE")
    assert_same(load_named_state("served.pth", flag="--weights", published=[checkpoint]), STATE)
    assert hub_checkpoint_path("served.pth").is_file()    # cached: the next run needs no network
    source.unlink()
    assert_same(load_named_state("served.pth", flag="--weights", published=[checkpoint]), STATE)


def test_a_failed_download_leaves_nothing_and_says_so(tmp_path, monkeypatch):
    checkpoint = PublishedCheckpoint("gone.pth", (tmp_path / "gone.pth").as_uri(), "a test server")
    monkeypatch.delenv("ACTIVE_LEARNING_OFFLINE")
    with pytest.raises(WeightsError, match="the download failed .*--from-scratch"):
        load_named_state("gone.pth", flag="--weights", published=[checkpoint])
    assert not hub_checkpoint_path("gone.pth").exists()


def test_a_name_the_task_does_not_publish_is_a_missing_file_or_an_unknown_name():
    with pytest.raises(WeightsError, match=r"--weights file other\.pth: no such file"):
        load_named_state("other.pth", flag="--weights", published=[REDUCED_FC])
    with pytest.raises(WeightsError, match="not a torchvision weights name .* vgg16_reducedfc.pth"):
        load_named_state("vgg16", flag="--weights", published=[REDUCED_FC])


def test_a_timm_name_loads_timms_own_cached_file():
    import timm

    model = timm.create_model("test_resnet", pretrained=False)
    state = distinct_values(model.state_dict())
    hub_id = timm.models.get_pretrained_cfg("test_resnet.r160_in1k").hf_hub_id
    write_timm_cache(hub_id, state)
    loaded = load_named_state("timm:test_resnet.r160_in1k", flag="--weights-backbone")
    assert_same(loaded, state)
    assert describe_spec("timm:test_resnet.r160_in1k") == "timm's pretrained test_resnet.r160_in1k"


def test_a_timm_name_not_cached_offline_names_the_repository():
    with pytest.raises(WeightsError, match="timm/test_vit.r160_in1k.*--from-scratch"):
        load_named_state("timm:test_vit.r160_in1k", flag="--weights-backbone")
    with pytest.raises(WeightsError, match="timm has no pretrained weights of that name"):
        load_named_state("timm:no_such_model", flag="--weights-backbone")


def test_a_download_that_is_not_weights_is_deleted_and_says_so(tmp_path, monkeypatch):
    page = tmp_path / "page.html"
    page.write_text("<html>moved</html>")
    checkpoint = PublishedCheckpoint("model.pth", page.as_uri(), "a test server")
    monkeypatch.delenv("ACTIVE_LEARNING_OFFLINE")
    with pytest.raises(WeightsError, match="not a weights file.*downloaded from .*deleted: get the file from its publisher, or pass --from-scratch"):
        load_named_state("model.pth", flag="--weights", published=[checkpoint])
    assert not hub_checkpoint_path("model.pth").exists()
