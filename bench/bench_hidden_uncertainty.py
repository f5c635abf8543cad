"""Does hidden uncertainty's density overfit here, as its reference reports?

hidden_uncertainty_active_learning reports two failures of hidden uncertainty (HU) in active
learning: in classification its class densities overfit the few labeled images of the first
cycles; in segmentation they overfit the minority classes. For each labeled-set size this trains
the task's model on a seeded random labeled set (one cycle of the task's protocol, through the
task's ``main`` with ``--save-checkpoints``), fits the class densities on the labeled rows as the
strategy does (``strategies/hidden_uncertainty.py``), and measures on the test set:

- per class, the mean log-density per dimension ``log p(x | c) / D`` of the labeled rows of class
  c and of the test rows of class c: their gap is how much likelier the density finds the rows it
  was fitted to than new rows of the same class (overfitting: a large gap);
- the AUROC of HU's uncertainty ``-log p(x)`` for telling the model's errors from its right
  answers on the test rows, beside the AUROC of the predictive entropy (0.5: no information);
- segmentation: each class's gap beside its share of the labeled pixels (the minority classes).

    python bench/bench_hidden_uncertainty.py classification --sizes 100 300 1000 3000 \\
        -- --preset fmnist-cpu --threads 1
    python bench/bench_hidden_uncertainty.py segmentation --sizes 10 40 160 \\
        -- --preset synthetic-cpu -d data/fmnist_cityscapes --threads 1

Arguments after ``--`` go to the task's train.py. Runs go under ``--output-dir`` (default
``runs/hidden_uncertainty``); a size whose run exists is not trained again.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from active_learning import arguments, cli, run_setup  # noqa: E402
from active_learning.loop.fitting import labeled_features  # noqa: E402
from active_learning.loop.inference import make_loader  # noqa: E402
from active_learning.loop.pool import PoolState  # noqa: E402
from active_learning.strategies.hidden_uncertainty import fit_class_conditional  # noqa: E402
from active_learning.strategies.labeled import ClassSample, cell_centers, hidden_rows  # noqa: E402

TEST_ROWS_PER_CLASS = 5_000


def train(task: str, size: int, seed: int, extra: list[str], output: Path) -> tuple[Any, Any, Any,
                                                                                 Path]:
    """(adapter, trained model, config, run folder) of one cycle on ``size`` random labels."""
    command = importlib.import_module(f"{task}.train").COMMAND
    argv = [*extra, "--strategy", "random", "--cycles", "1", "--initial-size", str(size),
            "--images-per-cycle", "1", "--subset", "1", "--save-checkpoints", "--seed", str(seed),
            "--no-progress", "--output-dir", str(output / f"size{size}")]
    run_dir = cli.run(command, argv)
    prepared = run_setup.prepare(command, arguments.parse_args(command, argv))
    adapter = prepared.built.adapter
    model = adapter.build_model()
    saved = torch.load(run_dir / "checkpoints" / "cycle_00.pt", map_location="cpu",
                       weights_only=False)
    model.load_state_dict(saved["model"])
    return adapter, model.eval(), prepared.config, run_dir


@torch.inference_mode()
def test_rows(adapter, model, config) -> dict[str, np.ndarray]:
    """The test set's hidden rows with their labels, the model's classes and the entropy of its
    probabilities at each row (a uniform sample of each class for per-pixel outputs)."""
    loader = make_loader(adapter, adapter.test_set, config.eval_batch_size, config)
    sample = None
    for batch in loader:
        inputs, targets = adapter.split_batch(batch, torch.device("cpu"))
        outputs, features = adapter.forward_intermediates(model, inputs)
        probs = adapter.probabilities(outputs)
        hidden = adapter.hidden_features(outputs, features)
        if hidden.ndim == 4:   # the probabilities at the rows' positions, as extra columns
            ys = cell_centers(probs.shape[-2], hidden.shape[-2], probs.device)
            xs = cell_centers(probs.shape[-1], hidden.shape[-1], probs.device)
            extra = probs[:, :, ys][:, :, :, xs]
        else:
            extra = probs
        rows, labels, predicted = hidden_rows(torch.cat([hidden, extra], dim=1), targets, probs)
        if sample is None:
            sample = ClassSample(probs.shape[1], TEST_ROWS_PER_CLASS, seed=0)
        sample.add(rows.numpy(), labels.numpy(), predicted.numpy())
    assert sample is not None
    result = sample.result()
    dim = result.features.shape[1] - result.class_counts.shape[0]
    p = np.clip(result.features[:, dim:], 1e-12, 1.0)
    return {"features": result.features[:, :dim], "labels": result.labels,
            "predicted": result.predicted, "entropy": -(p * np.log(p)).sum(axis=1)}


def auroc(positive: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores)) if 0 < positive.sum() < len(positive) \
        else float("nan")


def measure(adapter, model, config, run_dir: Path) -> dict[str, Any]:
    from sklearn.preprocessing import normalize

    units = adapter.selection_units()
    labeled = PoolState.load(run_dir / "pool.npz").labeled_up_to(0)
    rows = labeled_features(adapter, model, units.samples_of(labeled), config,
                            torch.device("cpu"), seed=0)
    density = fit_class_conditional(rows, seed=0)
    test = test_rows(adapter, model, config)
    dim = rows.features.shape[1]
    per_class = []
    for c in density.fitted_classes:
        mixture = density.mixtures[c]
        train_ll = mixture.score_samples(normalize(rows.features[rows.labels == c])).mean() / dim
        mine = test["labels"] == c
        test_ll = (mixture.score_samples(normalize(test["features"][mine])).mean() / dim
                   if mine.any() else float("nan"))
        per_class.append({"class": int(c), "rows": int((rows.labels == c).sum()),
                          "share": float(rows.class_counts[c] / rows.class_counts.sum()),
                          "train": float(train_ll), "test": float(test_ll),
                          "gap": float(train_ll - test_ll)})
    wrong = test["predicted"] != test["labels"]
    uncertainty = -density.log_density(test["features"])
    return {"labeled": len(labeled), "rows": len(rows), "dim": dim,
            "test_accuracy": float(1 - wrong.mean()), "per_class": per_class,
            "auroc_hu": auroc(wrong, uncertainty), "auroc_entropy": auroc(wrong, test["entropy"])}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=["classification", "segmentation"])
    parser.add_argument("--sizes", type=int, nargs="+", required=True,
                        help="labeled-set sizes (images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/hidden_uncertainty")
    args = parser.parse_args(argv)
    output = Path(args.output_dir) / args.task
    results = []
    for size in args.sizes:
        adapter, model, config, run_dir = train(args.task, size, args.seed, extra, output)
        results.append(measure(adapter, model, config, run_dir))
        result = results[-1]
        gaps = [row["gap"] for row in result["per_class"]]
        print(f"{size} labeled: {result['rows']} rows of {result['dim']} dims, test accuracy "
              f"{result['test_accuracy']:.4f}, gap {np.nanmean(gaps):.3f}, AUROC HU "
              f"{result['auroc_hu']:.3f} / entropy {result['auroc_entropy']:.3f}", flush=True)
    print("\n| labeled images | rows | test accuracy | log p(x|c)/D labeled | test | gap (min-max "
          "over classes) | AUROC of errors: HU | entropy |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        rows = result["per_class"]
        train_ll = np.mean([row["train"] for row in rows])
        test_ll = np.nanmean([row["test"] for row in rows])
        gaps = [row["gap"] for row in rows]
        print(f"| {result['labeled']} | {result['rows']} | {result['test_accuracy']:.4f} | "
              f"{train_ll:.3f} | {test_ll:.3f} | {np.nanmean(gaps):.3f} ({np.nanmin(gaps):.3f} "
              f"to {np.nanmax(gaps):.3f}) | {result['auroc_hu']:.3f} | "
              f"{result['auroc_entropy']:.3f} |")
    if args.task == "segmentation":
        for result in results:
            print(f"\n{result['labeled']} labeled images: class, share of labeled pixels, rows "
                  "fitted, log p(x|c)/D labeled / test, gap")
            for row in sorted(result["per_class"], key=lambda row: row["share"]):
                print(f"  {row['class']:2d}  {row['share']:.4f}  {row['rows']:6d}  "
                      f"{row['train']:8.3f} / {row['test']:8.3f}  {row['gap']:8.3f}")
            shares = np.array([row["share"] for row in result["per_class"]])
            gaps = np.array([row["gap"] for row in result["per_class"]])
            finite = np.isfinite(gaps)
            if finite.sum() > 2:
                from scipy.stats import spearmanr

                rho = spearmanr(shares[finite], gaps[finite]).statistic
                print(f"  Spearman correlation of share and gap: {rho:+.2f} (negative: the rarer "
                      "the class, the more its density overfits)")


if __name__ == "__main__":
    main()
