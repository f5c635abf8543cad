"""The runner's pretrained starts: a protocol's default backbone weights, --from-scratch, and a
missing file refused before the data is read."""
from __future__ import annotations

import pytest

from active_learning import arguments, cli
from active_learning.errors import ConfigError
from active_learning.files.pretrained import PublishedCheckpoint
from active_learning.strategies import CLASS_DISTRIBUTIONS
from cli_toys import ARGV
from weights_cache import write_hub_checkpoint

BASENET = PublishedCheckpoint("basenet.pth", "https://example.org/basenet.pth", "a reference")


def command(build=None) -> cli.TaskCommand:
    def no_data(args):
        raise AssertionError("the data was read before the weights were checked")

    return cli.TaskCommand(name="toy", description="toy task", output_kind=CLASS_DISTRIBUTIONS,
                           add_arguments=lambda arguments: None, build=build or no_data,
                           backbone_aliases=("--basenet",), published=(BASENET,),
                           presets={"reference": {"weights_backbone": "basenet.pth"}})


def test_the_reference_preset_names_its_pretrained_start_and_from_scratch_drops_it():
    assert arguments.parse_args(command(), ["--preset", "reference"]).weights_backbone == "basenet.pth"
    args = arguments.parse_args(command(), ["--preset", "reference", "--from-scratch"])
    assert args.weights_backbone is None and args.weights is None
    assert "from_scratch" not in args._recorded        # the run records the weights it used
    assert "weights_backbone" in args._recorded


@pytest.mark.parametrize("named", [["--basenet", "mine.pth"], ["--weights-backbone=mine.pth"],
                                   ["--weights_backbone", "mine.pth"]])
def test_from_scratch_next_to_named_backbone_weights_is_refused(named):
    with pytest.raises(ConfigError, match=f"cannot be combined with {named[0].split('=')[0]}"):
        arguments.parse_args(command(), ["--preset", "reference", "--from-scratch", *named])


@pytest.mark.parametrize("scratch", [[], ["--from-scratch"]])
def test_whole_model_weights_drop_the_default_backbone_but_keep_a_named_one(scratch):
    # the whole model replaces the backbone: its default file must not be required
    args = arguments.parse_args(command(), ["--preset", "reference", "--weights", "all.pth", *scratch])
    assert args.weights == "all.pth" and args.weights_backbone is None
    args = arguments.parse_args(command(), ["--preset", "reference", "--weights", "all.pth",
                                      "--basenet", "mine.pth"])
    assert args.weights_backbone == "mine.pth"


def test_a_missing_default_start_stops_before_the_data_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(command(), [*ARGV, "--preset", "reference", "--output-dir", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and error.count("\n") == 0
    assert error.startswith("error: --weights-backbone basenet.pth (a reference): not in")
    assert BASENET.url in error and "--from-scratch" in error
    assert not any(tmp_path.iterdir())


def test_help_lists_the_forms_weights_take_and_the_published_files(capsys):
    with pytest.raises(SystemExit):
        arguments.parse_args(command(), ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "VGG16_Weights.IMAGENET1K_FEATURES" in text and "timm:" in text
    assert "a published file (basenet.pth)" in text and "--from-scratch" in text


def test_a_cached_default_start_lets_the_run_go_on(tmp_path):
    import torch

    from active_learning.files.pretrained import load_named_state
    from toy_adapters import ToyClassificationAdapter

    seen = []

    def build(args):
        seen.append(load_named_state(args.weights_backbone, flag="--weights-backbone",
                                     published=(BASENET,)))
        return cli.BuiltTask(adapter=ToyClassificationAdapter(), dataset="toyset", summary="toy")

    write_hub_checkpoint("basenet.pth", {"w": torch.ones(2)})
    run_dir = cli.run(command(build), [*ARGV, "--preset", "reference", "--output-dir", str(tmp_path)])
    assert torch.equal(seen[0]["w"], torch.ones(2))
    assert (run_dir / "metrics.csv").is_file()
