"""Pretrain the CPU preset's narrow VGG-16-BN backbone on Fashion-MNIST items: a local --basenet.

The original project started SSD from ImageNet-pretrained VGG-16 (``vgg16_reducedfc.pth``); no
such weights exist for the narrow CPU backbone and none can be downloaded here, and an SSD trained
from scratch on a few hundred images barely moves off its initial loss. This trains the same
extractor (``object_detection.model.NarrowVGGExtractor``: conv1_1 .. conv5_3, fc6, fc7) as a
10-class classifier (global average pool of fc7 + a linear layer) on Fashion-MNIST *training*
items pasted, tinted and scaled, on random noise backgrounds at 64x64, and saves the extractor's
weights under the detector's key names (``backbone.*``), which ``--basenet`` loads.

As with ImageNet and VOC, the pretraining images are not the detection images: the scenes are
new compositions, boxes are never seen, and the pool's labels are only learned from its labels.

    python bench/pretrain_detection_backbone.py --width 0.0625 --batch-norm --epochs 2 \\
        --output data/fmnist_vgg16bn_w0.0625.pth --threads 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from object_detection.model import NarrowVGGExtractor  # noqa: E402
from synthetic.scenes import load_fashion_mnist  # noqa: E402

CANVAS = 64


def compose(items: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 items [B, 28, 28] -> float [B, 3, 64, 64] in 0..1: tinted items at random scale and
    place over smooth colour-noise backgrounds (what the scenes' items look like)."""
    batch = items.shape[0]
    size = int(torch.randint(28, CANVAS + 1, (1,), generator=generator))
    item = F.interpolate(items[:, None].float() / 255, size=(size, size), mode="bilinear", align_corners=False)
    tint = 0.6 + 0.4 * torch.rand(batch, 3, 1, 1, generator=generator)
    coarse = torch.rand(batch, 3, CANVAS // 8, CANVAS // 8, generator=generator)
    background = 0.2 + 0.6 * F.interpolate(coarse, size=(CANVAS, CANVAS), mode="nearest")
    background = (background + 0.05 * torch.randn(batch, 3, CANVAS, CANVAS, generator=generator)).clamp(0, 1)
    top, left = (int(torch.randint(0, CANVAS - size + 1, (1,), generator=generator)) for _ in range(2))
    canvas = background.clone()
    region = canvas[:, :, top:top + size, left:left + size]
    mask = item > 40 / 255
    canvas[:, :, top:top + size, left:left + size] = torch.where(mask, item * tint, region)
    return canvas


class Classifier(nn.Module):
    def __init__(self, width: float, batch_norm: bool) -> None:
        super().__init__()
        self.backbone = NarrowVGGExtractor(width, batch_norm)
        self.fc = nn.Linear(self.backbone.out_channels[1], 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone.features(x)
        x = self.backbone.extra[0](x)              # pool4, conv5, fc6, fc7
        return self.fc(x.mean(dim=(2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=0.0625)
    parser.add_argument("--batch-norm", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    images, labels = (torch.from_numpy(a) for a in load_fashion_mnist(None, "train"))
    test_images, test_labels = (torch.from_numpy(a) for a in load_fashion_mnist(None, "t10k"))
    model = Classifier(args.width, args.batch_norm).to(memory_format=torch.channels_last)
    steps = args.epochs * (len(images) // args.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    start = time.perf_counter()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for first in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = order[first:first + args.batch_size]
            inputs = compose(images[batch], generator).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(inputs), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 100 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item():.3f} "
                      f"{time.perf_counter() - start:.0f} s", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for first in range(0, len(test_images), 500):
            inputs = compose(test_images[first:first + 500], generator).contiguous(memory_format=torch.channels_last)
            correct += int((model(inputs).argmax(1) == test_labels[first:first + 500]).sum())
    print(f"Fashion-MNIST test items on noise: accuracy {correct / len(test_images):.4f} "
          f"after {time.perf_counter() - start:.0f} s")
    state = {f"backbone.{key}": value for key, value in model.backbone.state_dict().items()}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, output)
    print(f"saved {len(state)} tensors to {output} (load with --basenet {output} --width {args.width}"
          f"{' --batch-norm' if args.batch_norm else ''})")


if __name__ == "__main__":
    main()
