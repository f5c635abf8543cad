"""Pretrained starts: ImageNet HRNet (the reference's hrnet_w32-36af842e.pth, timm's hrnet_w32) for
the backbone, the reference's COCO pose_hrnet file for the whole model; tiny files under the
reference's key names in per-test caches (tests/conftest.py), never a download."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch

from active_learning.errors import WeightsError
from human_pose_estimation.model import build_model, single_scale_fusions
from human_pose_estimation.train import main, parse_args
from human_pose_estimation.weights import IMAGENET_HRNET_W32, PUBLISHED
from pose_fixtures import TINY_ARGS, write_tiny_coco
from weights_cache import distinct_values, write_hub_checkpoint, write_timm_cache

ARCH = "hrnet_w18_small"          # the same names as HRNet-W32, a 6 MB file
TASK_DIR = Path(__file__).resolve().parents[2] / "human_pose_estimation"
CONFIG = "experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml"
# Names of HRNet's ImageNet classifier (HRNet-Image-Classification's cls_hrnet; pose_hrnet.py keeps
# them for its backbone): the stem, the bottleneck stage, transitions, branches, fusions, the head.
REFERENCE_NAMES = ("conv1.weight", "bn2.running_var", "layer1.0.downsample.0.weight", "layer1.0.conv3.weight",
                   "transition1.0.0.weight", "transition1.1.0.0.weight", "stage2.0.branches.1.0.bn2.bias",
                   "stage2.0.fuse_layers.0.1.0.weight", "stage2.0.fuse_layers.1.0.0.0.weight",
                   "transition3.3.0.0.weight", "stage4.0.fuse_layers.3.0.2.1.weight",
                   "incre_modules.0.0.conv1.weight", "final_layer.0.weight", "classifier.weight")
HEAD = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


def imagenet_file_state(arch: str = ARCH) -> dict[str, torch.Tensor]:
    """An HRNet ImageNet classifier's state dict under the reference's names, every tensor a
    distinct value."""
    import timm

    state = distinct_values(timm.create_model(arch).state_dict())
    assert all(name in state for name in REFERENCE_NAMES)
    return state


def assert_backbone_is(model, state: dict[str, torch.Tensor]) -> None:
    """Every backbone tensor is the file's tensor of the same reference name."""
    own = model.backbone.state_dict()
    for key, value in own.items():
        assert torch.equal(value, state[key]), key
    assert sorted(own) == sorted(key for key in state if not key.startswith(HEAD))


def test_the_published_imagenet_file_loads_into_the_backbone_layer_by_layer():
    state = imagenet_file_state()
    write_hub_checkpoint(IMAGENET_HRNET_W32, state)
    head = build_model(ARCH).final_layer.weight
    model = build_model(ARCH, pretrained=IMAGENET_HRNET_W32, published=PUBLISHED)
    assert_backbone_is(model, state)
    assert model.final_layer.weight.std() < 0.01 and head.shape == model.final_layer.weight.shape  # the head: its init


def test_timm_names_load_from_timms_cache():
    state = imagenet_file_state()
    write_timm_cache(f"timm/{ARCH}.gluon_in1k", state)
    for spec in (f"timm:{ARCH}", f"timm:{ARCH}.gluon_in1k"):
        assert_backbone_is(build_model(ARCH, pretrained=spec), state)


def test_a_layer_missing_from_the_file_stops_the_load(tmp_path):
    state = imagenet_file_state()
    del state["stage3.0.branches.2.1.conv2.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"missing keys \(1\): stage3.0.branches.2.1.conv2.weight"):
        build_model(ARCH, pretrained=str(tmp_path / "partial.pth"))
    with pytest.raises(WeightsError, match="shape mismatches"):          # another width
        build_model("hrnet_w18_small_v2", pretrained=str(tmp_path / "partial.pth"))


def pose_hrnet_file_state() -> dict[str, torch.Tensor]:
    """The reference's COCO model under pose_hrnet's names: the backbone's, without the last
    stage-4 module's fusions into branches 2-4 (multi_scale_output False), and final_layer."""
    backbone = build_model(ARCH).backbone
    absent = set(single_scale_fusions(backbone))
    assert absent and all(".fuse_layers.0." not in key for key in absent)
    state = {key: value for key, value in backbone.state_dict().items() if key not in absent}
    state["final_layer.weight"] = torch.zeros(17, 16, 1, 1)
    state["final_layer.bias"] = torch.zeros(17)
    return distinct_values(state)


def test_the_reference_coco_pose_model_loads_as_the_whole_model(tmp_path):
    state = pose_hrnet_file_state()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "pose_hrnet.pth")
    torch.manual_seed(0)
    fresh = build_model(ARCH).state_dict()
    torch.manual_seed(0)
    model = build_model(ARCH, weights=str(tmp_path / "pose_hrnet.pth"))
    fusions = set(single_scale_fusions(model.backbone))
    for key, value in model.state_dict().items():
        name = key.removeprefix("backbone.")
        expected = fresh[key] if name in fusions else state[name]   # not in the file: the model's own
        assert torch.equal(value, expected), key
    # the same file as a backbone start: its head is left out
    backbone = build_model(ARCH, pretrained=str(tmp_path / "pose_hrnet.pth")).backbone.state_dict()
    assert all(torch.equal(backbone[key], state[key]) for key in backbone if key not in fusions)
    # a file that lacks a layer besides those fusions is refused
    del state["stage2.0.fuse_layers.0.1.0.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="stage2.0.fuse_layers.0.1.0.weight"):
        build_model(ARCH, weights=str(tmp_path / "partial.pth"))


def test_our_own_model_file_still_loads(tmp_path):
    source = build_model(ARCH)
    state = distinct_values(source.state_dict())
    torch.save(state, tmp_path / "ours.pth")
    model = build_model(ARCH, weights=str(tmp_path / "ours.pth"))
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_coco(tmp_path_factory.mktemp("data") / "coco")


def _tiny(dataset, tmp_path) -> list[str]:
    args = [arg for arg in TINY_ARGS if arg != "--from-scratch"]
    return ["--dataset-root", str(dataset), *args, "--output-dir", str(tmp_path / "runs"), "--cycles", "1"]


def test_the_reference_starts_from_imagenet_hrnet_w32_and_says_so_when_it_is_missing(dataset, tmp_path, capsys):
    assert parse_args([]).weights_backbone == IMAGENET_HRNET_W32
    # another width starts from its own ImageNet weights: HRNet's W48 file, timm's for the rest
    assert parse_args(["--arch", "hrnet_w48"]).weights_backbone == "hrnet_w48-8ef0771d.pth"
    assert parse_args(["--arch", "hrnet_w18"]).weights_backbone == "timm:hrnet_w18"
    assert parse_args(["--arch", "hrnet_w18", "--pretrained", "mine.pth"]).weights_backbone == "mine.pth"
    assert parse_args(["--preset", "coco"]).weights_backbone == IMAGENET_HRNET_W32
    assert parse_args(["--preset", "synthetic-cpu"]).weights_backbone is None     # the CPU preset: from scratch
    assert parse_args(["--from-scratch"]).weights_backbone is None
    for arch, named in (("hrnet_w32", "https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w32-36af842e.pth"),
                        (ARCH, f"timm:{ARCH}")):
        with pytest.raises(SystemExit) as exit_info:
            main(_tiny(dataset, tmp_path) + ["--arch", arch])
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert exit_info.value.code == 2 and len(lines) == 1
        assert named in lines[0] and "--from-scratch" in lines[0]
        assert not (tmp_path / "runs").exists()                          # stopped before anything ran


def test_a_tiny_run_starts_from_the_cached_published_file(dataset, tmp_path, monkeypatch):
    import human_pose_estimation.task as task_module

    state = imagenet_file_state()
    write_hub_checkpoint(IMAGENET_HRNET_W32, state)     # a tiny stand-in under the published name
    built = []
    original = task_module.build_model
    monkeypatch.setattr(task_module, "build_model", lambda *a, **k: built.append(original(*a, **k)) or built[-1])
    run_dir = main(_tiny(dataset, tmp_path) + ["--pretrained", IMAGENET_HRNET_W32])
    assert (run_dir / "metrics.csv").is_file()
    assert built and all(torch.equal(built[0].backbone.state_dict()[key], state[key])
                         for key in built[0].backbone.state_dict())


def _tools():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pose_tools_train", TASK_DIR / "tools" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cfg_path_starts_from_the_same_file(monkeypatch, tmp_path):
    monkeypatch.chdir(TASK_DIR)
    tools = _tools()
    argv, _ = tools.build_argv(shlex.split(f"--cfg {CONFIG}"))
    assert parse_args(argv).weights_backbone == IMAGENET_HRNET_W32    # not under models/: the published file
    local = tmp_path / "models" / "pytorch" / "imagenet" / IMAGENET_HRNET_W32
    local.parent.mkdir(parents=True)
    local.write_bytes(b"")
    monkeypatch.setattr(tools, "TASK_DIR", tmp_path)
    argv, _ = tools.build_argv(shlex.split(f"--cfg {TASK_DIR / CONFIG}"))
    assert parse_args(argv).weights_backbone == str(local)              # MODEL.PRETRAINED's own path
    for extra, expected in (("--from-scratch", None), ("MODEL.INIT_WEIGHTS false", None),
                            ("--pretrained mine.pth", "mine.pth")):
        argv, _ = tools.build_argv(shlex.split(f"--cfg {TASK_DIR / CONFIG} {extra}"))
        assert parse_args(argv).weights_backbone == expected
    with pytest.raises(WeightsError, match="MODEL.PRETRAINED models/none.pth: no such file"):
        tools.build_argv(shlex.split(f"--cfg {TASK_DIR / CONFIG} MODEL.PRETRAINED models/none.pth"))


def test_an_unknown_model_pretrained_file_is_one_error(monkeypatch, capsys):
    monkeypatch.chdir(TASK_DIR)
    with pytest.raises(SystemExit) as exit_info:
        _tools().main(shlex.split(f"--cfg {CONFIG} MODEL.PRETRAINED models/none.pth"))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "MODEL.PRETRAINED models/none.pth: no such file" in err
    assert "--from-scratch" in err and "Traceback" not in err


def test_the_coco_pose_model_is_never_downloaded_from_its_page(monkeypatch, tmp_path):
    monkeypatch.delenv("ACTIVE_LEARNING_OFFLINE")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded a page"))
    with pytest.raises(WeightsError, match="published on a page.*drive.google.com"):
        parse_args(["--weights", "pose_hrnet_w32_256x192.pth"])
    write_hub_checkpoint("pose_hrnet_w32_256x192.pth", pose_hrnet_file_state())
    assert parse_args(["--weights", "pose_hrnet_w32_256x192.pth"]).weights == "pose_hrnet_w32_256x192.pth"


def test_an_offline_person_detector_without_its_file_says_what_to_do_instead(monkeypatch,
                                                                            tmp_path):
    # --from-scratch cannot help a detector: the advice is to give the boxes themselves
    from human_pose_estimation.person_boxes import TorchvisionDetector

    ssdlite = "SSDLite320_MobileNet_V3_Large_Weights.COCO_V1"   # the smallest to build

    monkeypatch.setenv("ACTIVE_LEARNING_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as caught:
        TorchvisionDetector(ssdlite, "cpu")
    message = str(caught.value)
    assert message.startswith(f"--person-detector {ssdlite}: not in torch.hub's cache")
    assert "--person-boxes FILE" in message and "--from-scratch" not in message
