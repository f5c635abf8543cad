"""Use active learning in your own project: wrap a model, train it with the ranking loss,
choose which images to label next, and write the priority CSV an annotation platform imports.

A torchvision ResNet-18 on a tiny synthetic pool (random 3x32x32 images), so it runs in seconds
on a CPU and downloads nothing. Replace `make_pool` and the training loop with your own.

    python examples/own_project.py --output-dir /tmp/al_example
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from active_learning import (
    ActiveLearning,
    LossPredictionLoss,
    choose_new_labeled_indices,
    write_entropies_csv,
)


def make_pool(size: int, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Stand-in for your dataset: images [N, 3, 32, 32], labels [N], one file name per image."""
    images = torch.randn(size, 3, 32, 32)  # [N, 3, 32, 32]
    labels = torch.randint(0, num_classes, (size,))  # [N]
    return images, labels, [f"img_{i:04d}.png" for i in range(size)]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path,
                        default=Path(tempfile.mkdtemp(prefix="al_example_")))
    parser.add_argument("--pool-size", type=int, default=64)
    parser.add_argument("--budget", type=int, default=8, help="images to label next")
    parser.add_argument("--lamda", type=float, default=1.0, help="weight of the ranking loss")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    images, labels, names = make_pool(args.pool_size)
    labeled = np.arange(16)  # absolute dataset indices of the images labeled so far
    unlabeled = np.arange(16, args.pool_size)

    # 1. Wrap any model: forward hooks tap these layers' outputs, the model stays unedited.
    net = torchvision.models.resnet18(weights=None, num_classes=10)
    model = ActiveLearning(net, feature_layers=["layer1", "layer2", "layer3", "layer4"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ranking_loss = LossPredictionLoss(margin=1.0)

    # 2. Train as usual, with one task loss per image plus the loss prediction module's ranking
    #    loss.
    model.train()
    for step in range(3):
        batch = torch.as_tensor(np.random.default_rng(step).choice(labeled, 8, replace=False))
        # detach_features=True: the ranking loss trains the module only, never the backbone (the
        # paper lets it shape the backbone for 60% of the epochs, which cost accuracy in our runs)
        logits, loss_pred = model(images[batch], detach_features=True)  # [B, 10], [B]
        # [B]: never a batch mean here
        loss = F.cross_entropy(logits, labels[batch], reduction="none")
        total = loss.mean() + args.lamda * ranking_loss(loss_pred, loss)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    # 3. Score the unlabeled pool in batches; the loss module predicts each image's loss.
    model.eval()
    with torch.inference_mode():
        outputs = [model(images[torch.as_tensor(chunk)]) for chunk in np.array_split(unlabeled, 2)]
    logits = torch.cat([out[0] for out in outputs])  # [U, 10]
    predicted_loss = torch.cat([out[1] for out in outputs])  # [U]

    # 4. Highest predicted loss first; indices are absolute dataset indices, not pool positions.
    indices, scores = choose_new_labeled_indices("loss_prediction", unlabeled, args.budget,
                                                 scores=predicted_loss)
    csv_path = args.output_dir / "priorities.csv"
    write_entropies_csv(names, indices, scores, csv_path)
    print(f"loss prediction: labels next {[names[i] for i in indices]}")
    print(f"priority CSV written to {csv_path}")

    # 5. Any uncertainty strategy works the same way from softmax probabilities.
    probs = logits.softmax(dim=1)  # [U, 10]
    indices, scores = choose_new_labeled_indices("entropy", unlabeled, args.budget,
                                                 inputs={"probs": probs})
    entropy_path = args.output_dir / "priorities_entropy.csv"
    write_entropies_csv(names, indices, scores, entropy_path)
    print(f"entropy CSV written to {entropy_path}")
    return csv_path


if __name__ == "__main__":
    main()
