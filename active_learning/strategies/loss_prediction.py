"""Learning Loss for Active Learning (Yoo & Kweon, CVPR 2019).

A small head, the *loss prediction module*, reads intermediate feature maps of the
target network and predicts the network's loss on each sample. Unlabeled samples with the
highest predicted loss are labeled first.

Pieces:

- :class:`LossPredictionModule` — per level AdaptiveAvgPool2d(g) -> Linear(C*g*g, width) -> ReLU,
  concatenate the levels -> Linear(levels*width, 1); output ``[B]``.
- :class:`LossPredictionLoss` — the paper's pairwise ranking hinge loss.
- :class:`FeatureTap` — captures named submodules' outputs with forward hooks.
- :class:`ActiveLearning` — wraps a network: ``outputs, loss_pred = wrapped(x)``.
- :data:`OPTIONS` and :func:`loss_prediction_companion` — what the ``loss_prediction`` strategy
  declares: its settings, and the module the loop trains beside the model
  (:class:`LossPredictionCompanion`: task loss + lamda x ranking loss, features detached from
  the detach epoch on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from active_learning.extras import require
from active_learning.strategies.options import StrategyOption

__all__ = ["LossPredictionModule", "LossPredictionLoss", "FeatureTap", "ActiveLearning",
           "OPTIONS", "LossPredictionCompanion", "loss_prediction_companion", "detach_epoch",
           "check_config"]

_ORIGINAL_COUNTS = "get_active_learning_feature_channel_counts"
_ORIGINAL_FEATURES = "get_active_learning_features"


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class LossPredictionModule(nn.Module):
    """Predicts one loss value per sample from several feature maps.

    Args:
        feature_channels: channels ``C_i`` of each feature level, in the order the maps are given.
        pool_size: ``g``; each map is average-pooled to ``g x g`` (the paper uses 1).
        width: hidden units per level (the paper uses 128).
    """

    def __init__(self, feature_channels: Sequence[int], pool_size: int = 1,
                 width: int = 128) -> None:
        super().__init__()
        channels = list(feature_channels)
        if not channels:
            raise ValueError("feature_channels must name at least one feature level")
        for level, c in enumerate(channels):
            _check_positive_int(c, f"feature_channels[{level}]")
        self.feature_channels = channels
        self.pool_size = _check_positive_int(pool_size, "pool_size")
        self.width = _check_positive_int(width, "width")
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(pool_size),  # [B, C, g, g]
                nn.Flatten(1),  # [B, C*g*g]
                nn.Linear(c * pool_size * pool_size, width),  # [B, width]
                nn.ReLU(inplace=True),
            )
            for c in channels
        )
        self.head = nn.Linear(len(channels) * width, 1)

    def check_features(self, features: Sequence[Tensor]) -> None:
        """Raise ``ValueError`` naming the level if ``features`` does not match this module."""
        if isinstance(features, Tensor) or len(features) != len(self.feature_channels):
            got = "a single tensor" if isinstance(features, Tensor) else f"{len(features)} maps"
            raise ValueError(
                f"features: expected {len(self.feature_channels)} feature maps (one "
                f"per level), got {got}"
            )
        batch = None
        for level, (f, c) in enumerate(zip(features, self.feature_channels, strict=True)):
            if not isinstance(f, Tensor) or f.ndim != 4:
                shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
                raise ValueError(f"features[{level}]: expected a 4-D map [B, C, H, W], got {shape}")
            if f.shape[1] != c:
                raise ValueError(f"features[{level}]: expected {c} channels, got {f.shape[1]} "
                                 f"(shape {tuple(f.shape)})")
            if batch is not None and f.shape[0] != batch:
                raise ValueError(f"features[{level}]: batch size {f.shape[0]} differs "
                                 f"from level 0 ({batch})")
            batch = f.shape[0]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """features: one ``[B, C_i, H_i, W_i]`` map per level -> predicted loss ``[B]``."""
        self.check_features(features)
        hidden = [level(f)  # levels x [B, width]
                  for level, f in zip(self.levels, features, strict=True)]
        return self.head(torch.cat(hidden, dim=1)).squeeze(1)  # [B]


class LossPredictionLoss(nn.Module):
    """Pairwise ranking loss of the paper: learn the *order* of the losses, not their scale.

    Sample ``i`` is paired with sample ``B-1-i`` for ``i < B//2`` (an odd batch first drops its
    last sample). With ``sign = +1`` where ``l_i > l_j`` else ``-1``, each pair contributes
    ``max(0, -sign * (lhat_i - lhat_j) + margin)``; the result is the mean over the ``B//2`` pairs.
    The target losses are detached: the ranking loss must not push the task loss around.
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        margin = float(margin)
        if not margin >= 0.0 or margin == float("inf"):  # also rejects NaN
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        self.margin = margin

    @staticmethod
    def _flatten(t: Tensor, name: str) -> Tensor:
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a Tensor, got {type(t).__name__}")
        if t.ndim == 2 and t.shape[1] == 1:
            return t[:, 0]  # [B, 1] -> [B]
        if t.ndim != 1:
            raise ValueError(f"{name} must have shape [B] or [B, 1], got {tuple(t.shape)}")
        return t

    def forward(self, loss_pred: Tensor, target_loss: Tensor) -> Tensor:
        """loss_pred: ``[B]`` or ``[B, 1]``; target_loss: ``[B]`` or ``[B, 1]`` -> scalar."""
        pred = self._flatten(loss_pred, "loss_pred")  # [B]
        target = self._flatten(target_loss, "target_loss").detach()  # [B]
        # Reshaping both to [B] first is what prevents [B, 1] - [B] broadcasting to [B, B].
        if pred.shape[0] != target.shape[0]:
            raise ValueError(
                f"loss_pred and target_loss disagree: {tuple(loss_pred.shape)} vs "
                f"{tuple(target_loss.shape)}"
            )
        batch = pred.shape[0]
        if batch < 2:
            raise ValueError("LossPredictionLoss needs a batch of at least 2 samples to "
                             f"form a pair, got {batch}")
        even = batch - batch % 2  # an odd batch drops its last sample
        half = even // 2
        pred, target = pred[:even], target[:even]  # [even]
        pred_diff = (pred - pred.flip(0))[:half]  # [half]: lhat_i - lhat_{even-1-i}
        target_diff = (target - target.flip(0))[:half]  # [half]
        sign = torch.where(target_diff > 0, 1.0, -1.0).to(pred_diff.dtype)  # [half]; ties -> -1
        return torch.clamp(self.margin - sign * pred_diff, min=0).mean()  # scalar


def _describe_names(model: nn.Module, limit: int = 8) -> str:
    names = [n for n, _ in model.named_modules() if n]
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return shown + more if names else "(the model has no submodules)"


class _CaptureHook:
    """A forward hook that is an object, not a closure, so copy.deepcopy and pickle of the
    wrapped model carry it over to the copy's own tap."""

    def __init__(self, tap: FeatureTap, name: str) -> None:
        self.tap = tap
        self.name = name

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.tap._record(self.name, output)


class FeatureTap:
    """Captures the outputs of named submodules of ``model`` with forward hooks.

    The hooks record only while the tap is armed (inside ``with tap:``), and :meth:`collect`
    hands the maps over and forgets them, so no activation outlives the forward that made it.
    If a tapped module runs several times in one forward, its last output is kept.
    Works under ``torch.no_grad()`` and ``torch.inference_mode()``.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        if isinstance(names, str):
            raise ValueError("feature_layers must be a sequence of module names, got "
                             f"the string {names!r}")
        self.names = list(names)
        if not self.names:
            raise ValueError("feature_layers must name at least one module")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature_layers has duplicate names: {self.names}")
        self.modules = [self._resolve(model, n) for n in self.names]
        self._captured: dict[str, Any] = {}
        self._armed = False
        self._handles = [m.register_forward_hook(_CaptureHook(self, n))
                         for n, m in zip(self.names, self.modules, strict=True)]

    @staticmethod
    def _resolve(model: nn.Module, name: str) -> nn.Module:
        if not isinstance(name, str) or not name:
            raise ValueError("feature_layers: each entry must be a non-empty "
                             f"module name, got {name!r}")
        try:
            return model.get_submodule(name)
        except AttributeError:
            raise ValueError(
                f"feature_layers: the model has no submodule named {name!r}; valid names include "
                f"{_describe_names(model)}"
            ) from None

    def _record(self, name: str, output: Any) -> None:
        if self._armed:  # outside a wrapped forward nothing is kept alive
            self._captured[name] = output

    def __enter__(self) -> FeatureTap:
        self._captured.clear()
        self._armed = True
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._armed = False
        if exc_type is not None:  # the forward failed: drop whatever it captured
            self._captured = {}

    def collect(self) -> list[Tensor]:
        """Return the captured maps in ``names`` order (each ``[B, C, H, W]``) and forget them.

        Raises ``RuntimeError`` if a tapped module did not run and ``ValueError`` naming the
        layer if its output is not a 4-D tensor.
        """
        captured, self._captured = self._captured, {}
        missing = [n for n in self.names if n not in captured]
        if missing:
            raise RuntimeError(f"feature_layers {missing} did not run during the forward pass")
        maps = [captured[n] for n in self.names]
        for name, f in zip(self.names, maps, strict=True):
            if not isinstance(f, Tensor) or f.ndim != 4:
                got = (f"shape {tuple(f.shape)}" if isinstance(f, Tensor)
                       else f"a {type(f).__name__}")
                raise ValueError(
                    f"feature layer {name!r} must output a 4-D feature map [B, C, H, W], got {got}"
                )
        return maps

    def remove(self) -> None:
        """Detach the hooks from the model."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._captured = {}


def _static_channels(module: nn.Module) -> int | None:
    """Out channels of the last Conv2d / BatchNorm2d in ``module.modules()`` order, else None."""
    channels = None
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            channels = m.out_channels
        elif isinstance(m, nn.BatchNorm2d):
            channels = m.num_features
    return channels


def _dry_forward(net: nn.Module, run: Callable[[], Any]) -> Any:
    """Run ``run()`` in eval mode without grad, then restore every module's train/eval mode."""
    modes = {m: m.training for m in net.modules()}
    try:
        net.eval()
        with torch.no_grad():
            return run()
    finally:
        for m, training in modes.items():
            m.train(training)


class ActiveLearning(nn.Module):
    """Wraps ``net`` with a loss prediction module: ``outputs, loss_pred = wrapped(x)``.

    Features come from one of two places:

    - ``feature_layers=None``: the net's own ``get_active_learning_feature_channel_counts()``
      and, after each forward, ``get_active_learning_features()`` (the original project's API).
    - ``feature_layers=["layer1", ...]``: forward hooks on those submodules (any model, unedited).
      Channels are measured by a dry forward on ``example_input`` when given, else read from the
      last Conv2d / BatchNorm2d of each named submodule.

    Attributes: ``net``, ``loss_module`` (:class:`LossPredictionModule`), ``feature_channels``.
    """

    def __init__(
        self,
        net: nn.Module,
        feature_layers: Sequence[str] | None = None,
        pool_size: int = 1,
        width: int = 128,
        example_input: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.feature_layers = None if feature_layers is None else list(feature_layers)
        # A plain attribute (not a submodule) so the hooks' bookkeeping stays out of state_dict.
        self.tap: FeatureTap | None = None
        if feature_layers is None:
            self.feature_channels = self._original_api_channels(net, example_input)
        else:
            self.tap = FeatureTap(net, feature_layers)
            self.feature_channels = self._tapped_channels(self.tap, example_input)
        self.loss_module = LossPredictionModule(self.feature_channels, pool_size=pool_size,
                                                width=width)
        param = next(net.parameters(), None)
        if param is not None:  # live next to the backbone
            self.loss_module.to(device=param.device,
                                dtype=param.dtype if param.is_floating_point() else None)

    @staticmethod
    def _original_api_channels(net: nn.Module, example_input: Tensor | None) -> list[int]:
        missing = [n for n in (_ORIGINAL_COUNTS, _ORIGINAL_FEATURES)
                   if not callable(getattr(net, n, None))]
        if missing:
            raise TypeError(
                f"{type(net).__name__} does not provide {' and '.join(m + '()' for m in missing)}. "
                "Either pass feature_layers=['layer1', 'layer2', ...] (names of submodules whose "
                "outputs are 4-D feature maps; forward hooks capture them, the model stays "
                f"unedited), or give the model the original project's API: {_ORIGINAL_COUNTS}() -> "
                f"list[int] and, after a forward, {_ORIGINAL_FEATURES}() -> list[Tensor]."
            )
        channels = [int(c) for c in getattr(net, _ORIGINAL_COUNTS)()]
        if example_input is not None:  # cheap consistency check of the model's two methods
            _dry_forward(net, lambda: net(example_input))
            maps = list(getattr(net, _ORIGINAL_FEATURES)())
            LossPredictionModule(channels).check_features(maps)
        return channels

    def _tapped_channels(self, tap: FeatureTap, example_input: Tensor | None) -> list[int]:
        if example_input is not None:

            def run() -> list[Tensor]:
                with tap:
                    self.net(example_input)
                return tap.collect()  # raises naming a layer whose output is not 4-D

            return [int(f.shape[1]) for f in _dry_forward(self.net, run)]
        channels = []
        for name, module in zip(tap.names, tap.modules, strict=True):
            c = _static_channels(module)
            if c is None:
                raise ValueError(
                    f"cannot infer the channels of feature layer {name!r} ({type(module).__name__} "
                    "contains no Conv2d or BatchNorm2d); pass example_input=<a batch like the real "
                    "inputs> so a dry forward measures them"
                )
            channels.append(c)
        return channels

    def _features(self, x: Any) -> tuple[Any, list[Tensor]]:
        if self.tap is None:
            outputs = self.net(x)
            maps = list(getattr(self.net, _ORIGINAL_FEATURES)())
            return outputs, maps
        with self.tap:
            outputs = self.net(x)
        return outputs, self.tap.collect()

    def _check_maps(self, maps: list[Tensor]) -> None:
        names = self.feature_layers or [f"features[{i}]" for i in range(len(self.feature_channels))]
        if len(maps) != len(self.feature_channels):
            raise ValueError(
                f"{_ORIGINAL_FEATURES}() returned {len(maps)} maps, expected "
                f"{len(self.feature_channels)}"
            )
        for name, f, c in zip(names, maps, self.feature_channels, strict=True):
            if not isinstance(f, Tensor) or f.ndim != 4 or f.shape[1] != c:
                got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
                raise ValueError(f"feature layer {name!r}: expected a "
                                 f"[B, {c}, H, W] map, got {got}")

    def forward(self, x: Any, detach_features: bool = False) -> tuple[Any, Tensor]:
        """x: the net's input (e.g. ``[B, 3, H, W]``) -> ``(net outputs, loss_pred [B])``.

        ``detach_features=True`` stops the loss module's gradient from reaching the backbone
        (the paper does so for the last 40% of training); the module itself still learns.
        """
        outputs, maps = self._features(x)
        self._check_maps(maps)
        if detach_features:
            maps = [f.detach() for f in maps]
        return outputs, self.loss_module(maps)  # [B]


def ranking_diagnostics(predicted: Any, true: Any, max_items: int = 4000) -> dict[str, float]:
    """How well predicted losses rank the true ones: pairwise ranking accuracy and Kendall's tau.

    Args:
        predicted: float [N] the loss module's outputs.
        true: float [N] the per-sample task losses.
        max_items: above this, an evenly spaced subset of the items is compared (all pairs of
            4,000 items are 8 million comparisons).

    Returns:
        ``ranking_accuracy``: over the pairs whose true losses differ, the fraction that the
        prediction orders the same way (a tie in the prediction counts one half), 0.5 for
        random scores; ``kendall_tau``: Kendall's tau-b in [-1, 1], 0 for random scores.
        Both are NaN with fewer than two items or when every true loss is equal.
    """
    predicted = torch.as_tensor(predicted, dtype=torch.float64).reshape(-1).cpu()
    true = torch.as_tensor(true, dtype=torch.float64).reshape(-1).cpu()
    if predicted.shape != true.shape:
        raise ValueError(f"{predicted.numel()} predicted and {true.numel()} true losses")
    if predicted.numel() > max_items:
        keep = torch.linspace(0, predicted.numel() - 1, max_items).round().long()
        predicted, true = predicted[keep], true[keep]
    agree = ties = pairs = 0.0
    for start in range(0, predicted.numel(), 512):  # [512, N] blocks, never an [N, N] matrix
        true_sign = torch.sign(true[start:start + 512, None] - true[None, :])
        pred_sign = torch.sign(predicted[start:start + 512, None] - predicted[None, :])
        counted = true_sign != 0
        pairs += counted.sum().item()
        agree += (counted & (pred_sign == true_sign)).sum().item()
        ties += (counted & (pred_sign == 0)).sum().item()
    accuracy = (agree + 0.5 * ties) / pairs if pairs else float("nan")
    tau = float("nan")
    if predicted.numel() >= 2 and pairs:
        kendalltau = require("scipy.stats", "the loss module's ranking (Kendall's tau)").kendalltau

        tau = float(kendalltau(predicted.numpy(), true.numpy()).statistic)
    return {"ranking_accuracy": accuracy, "kendall_tau": tau}


# ---- the loss_prediction strategy's declarations --------------------------------------------

# The Learning Loss protocol's detach point (Yoo & Kweon, Sec. 4.1: 120 of 200 epochs).
DETACH_FRACTION = 0.6


def detach_epoch(options: Mapping[str, Any], epochs: int) -> int:
    """The epoch from which the loss module reads detached features: ``detach_epoch``, or
    ``detach_fraction`` of ``epochs`` when it is None."""
    if options.get("detach_epoch") is not None:
        return int(options["detach_epoch"])
    return int(options.get("detach_fraction", DETACH_FRACTION) * epochs)


def _non_negative(value: Any) -> bool:
    return value >= 0


def _positive(value: Any) -> bool:
    return value >= 1


# The run settings of the "loss_prediction" strategy (its flags, LoopConfig.options, args.json).
# The names are the flags' destinations, which the tasks' reference values and presets use.
OPTIONS = (
    StrategyOption("lamda", float, 1.0, "weight of the loss-prediction ranking loss",
                   check=_non_negative, requirement="must be >= 0",
                   flags=("--lamda", "--lambda"), legacy_field="lamda"),
    StrategyOption("margin", float, 1.0, "ranking loss margin", check=_non_negative,
                   requirement="must be >= 0", legacy_field="margin"),
    StrategyOption("detach_epoch", int, None,
                   "stop the ranking loss's gradient into the backbone from this epoch; 0 = the "
                   "loss module only reads detached features (default: {detach_fraction:.0%} of "
                   "the epochs)", check=_non_negative, requirement="must be >= 0",
                   legacy_field="detach_epoch",
                   protocol_value=lambda options, epochs: detach_epoch(options, epochs)),
    # No flag: a task's reference (pose detaches at 75%) or preset sets it. The detach epoch
    # it gives is what the protocol records (detach_epoch's protocol_value).
    StrategyOption("detach_fraction", float, DETACH_FRACTION,
                   "with no detach_epoch, the share of the epochs after which the features are "
                   "detached", check=_non_negative, requirement="must be >= 0", flags=(),
                   in_protocol=False),
    StrategyOption("loss_width", int, 128, "loss module hidden width", check=_positive,
                   requirement="must be >= 1", legacy_field="loss_width"),
    StrategyOption("loss_pool_size", int, 1,
                   "loss module: average-pool each feature map to N x N before its FC layer "
                   "(1: global average pooling, as in Learning Loss)", check=_positive,
                   requirement="must be >= 1", metavar="N",
                   legacy_field="loss_pool_size"),
)


def check_config(config: Any) -> str | None:
    """Why a protocol cannot train a loss module: the ranking loss pairs a batch's samples."""
    if config.batch_size % 2 or config.batch_size < 2:
        return (f"loss prediction pairs the samples of a batch: the batch size must be even, "
                f"got {config.batch_size}")
    return None


class LossPredictionCompanion:
    """The loss module as a training companion (``options.TrainingCompanion``).

    Each batch adds ``lamda x`` the ranking loss of its predictions to the task loss; from
    ``detach_from`` on, the module reads detached features, so the ranking loss stops shaping
    the backbone (Yoo & Kweon, Sec. 4.1). A batch of one sample forms no pair: it adds nothing.
    """

    stat = "ranking_loss"

    def __init__(self, module: nn.Module, *, lamda: float, margin: float,
                 detach_from: int) -> None:
        self.module = module
        self.lamda, self.margin, self.detach_from = lamda, margin, detach_from
        self._ranking = LossPredictionLoss(margin=margin)

    def train(self) -> None:
        self.module.train()

    def forward(self, features: Sequence[Tensor], epoch: int) -> Tensor:
        """``[B]`` predicted losses of one batch's feature maps."""
        taps = [feature.detach() for feature in features] if epoch >= self.detach_from \
            else list(features)
        return self.module(taps)

    def loss(self, output: Tensor, sample_losses: Tensor) -> tuple[Tensor | None, Tensor]:
        """(lamda x ranking loss, ranking loss); (None, 0) for a batch of one sample."""
        if sample_losses.shape[0] < 2:
            return None, torch.zeros((), device=sample_losses.device)
        rank = self._ranking(output.float(), sample_losses)
        return self.lamda * rank, rank

    def wrapped(self, module: nn.Module) -> LossPredictionCompanion:
        return LossPredictionCompanion(module, lamda=self.lamda, margin=self.margin,
                                       detach_from=self.detach_from)


def loss_prediction_companion(adapter: Any, config: Any) -> LossPredictionCompanion:
    """The loss module over the adapter's ``feature_info`` maps, on the run's device, with the
    run's options (``config.options``)."""
    options = config.options
    module = LossPredictionModule([info["channels"] for info in adapter.feature_info],
                                  pool_size=options["loss_pool_size"],
                                  width=options["loss_width"]).to(config.device)
    return LossPredictionCompanion(module, lamda=options["lamda"], margin=options["margin"],
                                   detach_from=detach_epoch(options, config.epochs))
