"""The reference classification network: ResNet-18, CIFAR variant, with its feature taps.

Built on torchvision's ``ResNet`` + ``BasicBlock`` (its ``_make_layer`` builds the stages), with the
changes small images need (He et al. 2016, section 4.2; the usual CIFAR ResNet-18):

- a 3x3 stride-1 stem convolution and no max-pool, so a 32x32 input keeps 32x32 in ``layer1``;
- stages of ``width * (1, 2, 4, 8)`` channels at strides 1, 2, 2, 2 (output strides 1, 2, 4, 8);
- an optional ``nn.Dropout`` right before ``fc`` so MC dropout has something to sample.

``feature_info`` lists the four stage outputs (``layer1`` .. ``layer4``) that feed the loss
prediction module, like timm's ``feature_info``. ``forward`` returns plain logits, so forward hooks
by module name and ``torch.fx.symbolic_trace`` both work; ``forward_intermediates`` returns logits,
the four maps and the pooled embedding in one pass. Weights are never downloaded.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, ResNet

from active_learning.files.weights import load_weights_file

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")


def feature_info(width: int = 64) -> list[dict]:
    """The four feature maps of a ``CifarResNet18`` of this ``width``.

    Returns ``[{"name", "channels", "stride"}, ...]`` for layer1..layer4: channels
    ``width * (1, 2, 4, 8)``, strides (relative to the input) 1, 2, 4, 8.
    """
    _check_positive_int(width, "width")
    return [
        {"name": name, "channels": width * 2**level, "stride": 2**level}
        for level, name in enumerate(STAGE_NAMES)
    ]


class CifarResNet18(ResNet):
    """ResNet-18 for small images (CIFAR-10, Fashion-MNIST, digits).

    Args:
        num_classes: number of output logits.
        in_channels: channels of the input images (3 for RGB, 1 for grayscale).
        width: channels of the first stage; the stages have ``width * (1, 2, 4, 8)``.
        dropout: probability of the ``nn.Dropout`` before ``fc`` (0 disables it: ``nn.Identity``).

    Input ``x: [B, in_channels, H, W]``; ``forward(x)`` returns logits ``[B, num_classes]``.
    With ``width=64`` and 10 classes it has 11,173,962 parameters, like the standard
    CIFAR ResNet-18.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64,
                 dropout: float = 0.0) -> None:
        _check_positive_int(num_classes, "num_classes")
        _check_positive_int(in_channels, "in_channels")
        _check_positive_int(width, "width")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        # torchvision built the ImageNet stem and 64..512 stages; replace them. Reassigning an
        # existing attribute keeps its place in _modules, so the module order stays stem ->
        # layers -> head.
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = self._norm_layer(width)
        self.maxpool = nn.Identity()  # a 32x32 image cannot afford the ImageNet 4x downsampling
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, 2 * width, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, 2, stride=2)
        # Re-register fc after dropout so that module order matches execution order (MC dropout code
        # that walks children in order finds the dropout before the last layer).
        del self.fc
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(8 * width, num_classes)
        self._init_weights()

        self.num_classes = num_classes
        self.in_channels = in_channels
        self.width = width
        self.embedding_dim = 8 * width
        self.feature_info = feature_info(width)

    def _init_weights(self) -> None:
        # Same scheme as torchvision's ResNet, applied again to the rebuilt layers.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [B, width, H, W]

    def _pool(self, x: Tensor) -> Tensor:
        return torch.flatten(self.avgpool(x), 1)  # [B, 8*width]

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, in_channels, H, W]`` -> logits ``[B, num_classes]``."""
        x = self._stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # [B, 8w, H/8, W/8]
        return self.fc(self.dropout(self._pool(x)))  # [B, num_classes]

    def forward_intermediates(self, x: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """One pass returning logits, the stage maps and the embedding.

        ``x: [B, in_channels, H, W]`` ->
        ``(logits [B, num_classes], [f1, f2, f3, f4], embedding [B, 8*width])`` where
        ``f_k: [B, width * 2**(k-1), ceil(H / 2**(k-1)), ceil(W / 2**(k-1))]`` (see
        ``feature_info``) and ``embedding`` is the pooled vector before dropout and ``fc``.
        """
        x = self._stem(x)
        features = []
        for name in STAGE_NAMES:
            x = getattr(self, name)(x)
            features.append(x)
        embedding = self._pool(x)  # [B, 8*width]
        logits = self.fc(self.dropout(embedding))  # [B, num_classes]
        return logits, features, embedding


def build_model(
    num_classes: int,
    in_channels: int,
    width: int = 64,
    dropout: float = 0.0,
    weights_path: str | os.PathLike | None = None,
) -> CifarResNet18:
    """A fresh ``CifarResNet18``; with ``weights_path``, load a local state_dict file into it.

    The file may hold the state_dict itself or a checkpoint with it under ``"state_dict"``,
    ``"model"`` or ``"net"`` (see :func:`active_learning.files.weights.read_state_dict`). A missing,
    unreadable or ill-fitting file raises ``WeightsError`` (a ``ValueError``) naming the
    missing / unexpected / mis-shaped keys.
    """
    model = CifarResNet18(num_classes=num_classes, in_channels=in_channels, width=width,
                          dropout=dropout)
    if weights_path is not None:
        load_weights(model, weights_path)
    return model


def load_weights(model: nn.Module, weights_path: str | os.PathLike) -> None:
    """Load a local state_dict (or a checkpoint holding one) into ``model``, strictly.

    Raises ``WeightsError`` naming ``--weights`` and the file (see
    :mod:`active_learning.files.weights`).
    """
    hint = ""
    if isinstance(model, CifarResNet18):
        hint = (f"the model has width {model.width}, {model.num_classes} classes and "
                f"{model.in_channels} input channels")
    load_weights_file(model, weights_path, flag="--weights", hint=hint)


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
