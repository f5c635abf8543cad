"""Strategy registry: one name per strategy, the same names on every task's ``--strategy``.

A strategy declares what it needs from the model (``needs``); the loop computes only that, in
one batched pass over the candidates. Two kinds exist:

* score strategies map a batch of model outputs to one score per item (``score_batch``); the
  loop keeps only the ``[N]`` scores, so dense tasks never hold a pool's probability maps;
  ranking is top-k of the scores.
* set strategies (core-set, BADGE, discriminative, TypiClust, ProbCover, Cluster-Margin,
  BatchBALD, the model-based outliers and clusters) need every candidate's inputs at once and
  choose a set (``select_set``).

A score strategy may first be fitted on the labeled items (``fit_labeled``: hidden uncertainty's
class densities, active transfer learning's error head), and a strategy may choose among the
best candidates of another (``presample``: outliers among the least confident).

A strategy declares its own settings and what it trains beside the model (``options``,
``companion``: ``strategies/options.py``); the command line, ``LoopConfig`` and the runner take
them from here. A module added to this package that lists its strategies in ``STRATEGIES`` is
registered with the built-in ones (:func:`register_modules`): a new strategy with its options is
its own file (and its tests).
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from active_learning.strategies import uncertainty
from active_learning.strategies.options import StrategyOption, TrainingCompanion, option_errors

if TYPE_CHECKING:
    from active_learning.strategies.labeled import LabeledFeatures

# What a strategy can ask the loop for.
PROBS = "probs"                    # [B, C, *dense] class probabilities
MC_PROBS = "mc_probs"              # [T, B, C, *dense] MC-dropout samples of the probabilities
LOSS_PRED = "loss_pred"            # [B] output of the loss prediction module
EMBEDDING = "embedding"            # [B, D] penultimate features
GRAD_EMBEDDING = "grad_embedding"  # [B, C*D] last-layer gradient embedding (BADGE)
HIDDEN = "hidden"                  # [B, D] or [B, D, h, w] hidden features (per image or per
                                   # pixel: TaskAdapter.hidden_features)
NEEDS = (PROBS, MC_PROBS, LOSS_PRED, EMBEDDING, GRAD_EMBEDDING, HIDDEN)

# What an adapter's ``probabilities`` returns (``TaskAdapter.output_kind``) and what a strategy
# reads (``Strategy.reads``): the core refuses a strategy whose ``reads`` lacks the task's kind.
CLASS_DISTRIBUTIONS = "distributions per image"   # [B, C]: one class distribution per image
PIXEL_DISTRIBUTIONS = "distributions per pixel"   # [B, C, H, W]: segmentation
BOX_DISTRIBUTIONS = "distributions per box"       # [B, C, A]: one per default box (detection)
HEATMAPS = "heatmaps"                             # [B, J, H, W]: regressed joint maps, not
                                                  # distributions
OUTPUT_KINDS = (CLASS_DISTRIBUTIONS, PIXEL_DISTRIBUTIONS, BOX_DISTRIBUTIONS, HEATMAPS)
DISTRIBUTIONS = frozenset({CLASS_DISTRIBUTIONS, PIXEL_DISTRIBUTIONS, BOX_DISTRIBUTIONS})
ANY_OUTPUT = frozenset(OUTPUT_KINDS)


@dataclass(frozen=True)
class Strategy:
    """A selection strategy.

    Attributes:
        name: registry name.
        needs: what the loop must compute for each candidate (subset of ``NEEDS``).
        description: one line for ``--help`` and listings.
        score_batch: ``(inputs: dict[need, Tensor], reduction) -> Tensor [B]`` for score strategies.
        select_set: ``(inputs: dict[need, ndarray/Tensor], labeled_embeddings, budget, seed,
            **options) -> (positions [K] into the candidates, scores [K])`` for set strategies.
        needs_labeled_embeddings: ``select_set`` also needs the labeled items' embeddings.
        options: the typed settings a run gives this strategy (``options.StrategyOption``):
            the command line's flags, ``LoopConfig.options`` and ``args.json``'s
            ``loop.options``; a set strategy's ``select_set`` receives them as keywords.
        keywords: further keyword options ``select_set`` accepts from a library caller
            (``choose_new_labeled_indices(options=...)``; e.g. DAL's ``lr``), beside ``options``.
        companion: ``(adapter, config) -> options.TrainingCompanion``: a module trained beside
            the model (Learning Loss's loss prediction module), built by the runner after the
            model; its per-sample output in evaluation is the ``loss_pred`` need.
        check_config: ``config -> message or None``: why this strategy cannot run a protocol
            (Learning Loss pairs the samples of a batch: an even batch size).
        mc_statistics: for MC strategies, the running statistics ``score_batch`` reads from an
            ``MCStatistics`` (see ``mc_statistics.py``): the loop then streams the T passes
            instead of holding ``[T, B, C, *dense]``. Empty: the loop passes the full samples.
        region_level: selects superpixels (region units) rather than whole images; the same
            scores, pooled per region (segmentation's ``*_superpixels`` strategies).
        reads: the output kinds (``OUTPUT_KINDS``) this strategy's scores mean anything for:
            by default every kind of class distribution (per image, per pixel, per box); BADGE
            needs one distribution per image, heatmap uncertainty needs heatmaps, a variance
            reads anything. Strategies that read no output (random, loss prediction, core-set,
            DAL) fit every kind (``fits_outputs``).
        variance_twin: the strategy ``--use-variance-as-uncertainty`` turns this one into.
        fit_labeled: for score strategies fitted on the labeled items first: ``(labeled:
            LabeledFeatures, seed) -> state``, the state ``score_batch`` then takes as its
            keyword ``fitted_keyword`` (see :meth:`fitted`). The loop computes the labeled
            items' hidden features with their true and predicted classes (``LabeledFeatures``)
            before scoring; such a strategy reads class distributions (per image or per pixel).
        fitted_keyword: the keyword under which ``score_batch`` takes the fitted state.
        held_out_fraction: the share of the labeled units the model is not trained on; a
            strategy with ``fit_labeled`` is then fitted on those only (``loop/holdout.py``).
        presample: ``(strategy name, factor)``: the candidates are first narrowed to the
            ``factor x budget`` best of that score strategy, and this one chooses among them.
        requires: the packages (import names) this strategy imports when it chooses; a run
            is refused before training when one is missing (``extras.check_installed``).
        region_context: a region strategy that reads more of each image than its regions' mean
            scores: the scoring pass also pools each region's predicted-class pixel counts
            (the argmax of ``probs``, which it then needs) and the regions' adjacency
            (``strategies/regions.py``: ``RegionCandidates``).
        select_regions: a region strategy's choice among the scored regions: ``(regions:
            RegionCandidates, budget, seed, **options) -> (positions [K], scores [K])``;
            None: the best means (``regions.top_regions``, with its per-image cap).
        select_sharded: under ``torch.distributed``, the set choice made with each process
            holding only its shard of the rows: ``(features [n, D] of this process: its
            labeled rows first, then its candidates; n_labeled, budget, offset, total, seed)
            -> global positions [K]`` (core-set's ``k_center_greedy_sharded``). None: rank 0
            gathers every embedding and runs ``select_set``.
    """

    name: str
    needs: frozenset[str]
    description: str
    score_batch: Callable[..., torch.Tensor] | None = None
    select_set: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None
    needs_labeled_embeddings: bool = False
    options: tuple[StrategyOption, ...] = ()
    keywords: frozenset[str] = frozenset()
    companion: Callable[[Any, Any], TrainingCompanion] | None = None
    check_config: Callable[[Any], str | None] | None = None
    mc_statistics: frozenset[str] = frozenset()
    region_level: bool = False
    reads: frozenset[str] = DISTRIBUTIONS
    variance_twin: str | None = None
    select_sharded: Callable[..., np.ndarray] | None = None
    fit_labeled: Callable[..., Any] | None = None
    fitted_keyword: str = "fitted"
    held_out_fraction: float = 0.0
    presample: tuple[str, int] | None = None
    requires: tuple[str, ...] = ()
    region_context: bool = False
    select_regions: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def is_set_strategy(self) -> bool:
        return self.select_set is not None

    def option_defaults(self) -> dict[str, Any]:
        """``{name: default}`` of the declared options, in declaration order."""
        return {option.name: option.default for option in self.options}

    def option_errors(self, values: Mapping[str, Any]) -> list[str]:
        """What is wrong with ``values`` as this strategy's options (unknown names, invalid
        values); empty when nothing is."""
        return option_errors(self.name, self.options, values)

    def fitted(self, labeled: LabeledFeatures, seed: int = 0) -> Strategy:
        """This strategy fitted on ``labeled``: ``with_state(fit_labeled(labeled, seed))``."""
        if self.fit_labeled is None:
            raise TypeError(f"strategy {self.name!r} is not fitted on the labeled items")
        return self.with_state(self.fit_labeled(labeled, seed))

    def with_state(self, state: Any) -> Strategy:
        """This strategy with ``score_batch`` bound to a fitted ``state`` (what ``fit_labeled``
        returned, e.g. on another process) and nothing left to fit (``fit_labeled`` None)."""
        if self.fit_labeled is None or self.score_batch is None:
            raise TypeError(f"strategy {self.name!r} is not fitted on the labeled items")
        return dataclasses.replace(
            self, score_batch=partial(self.score_batch, **{self.fitted_keyword: state}),
            fit_labeled=None)

    def score(self, inputs: Mapping[str, Any], reduction: str = "mean") -> torch.Tensor:
        """``score_batch(inputs, reduction=reduction)``: the scores of one batch of candidates."""
        if self.score_batch is None:
            raise TypeError(f"strategy {self.name!r} does not score candidates one by one")
        if self.fit_labeled is not None:
            raise TypeError(f"strategy {self.name!r} scores with what it learns from the "
                            "labeled items: call .fitted(labeled_features) first")
        return self.score_batch(inputs, reduction=reduction)

    @property
    def reads_outputs(self) -> bool:
        """Whether the scores are computed from the adapter's ``probabilities`` (a fitted
        strategy reads the labeled items' classes; a presample reads its strategy's)."""
        return (bool({PROBS, MC_PROBS, GRAD_EMBEDDING} & set(self.needs))
                or self.fit_labeled is not None
                or (self.presample is not None
                    and get_strategy(self.presample[0]).reads_outputs))

    def fits_outputs(self, output_kind: str) -> bool:
        """Whether this strategy can score a task whose ``probabilities`` are ``output_kind``."""
        return not self.reads_outputs or output_kind in self.reads

    def output_refusal(self, output_kind: str) -> str | None:
        """Why this strategy cannot score ``output_kind`` outputs, or None when it can."""
        if self.fits_outputs(output_kind):
            return None
        reads = ("class distributions" if self.reads == DISTRIBUTIONS
                 else " or ".join(sorted(self.reads)))
        return f"strategy {self.name!r} reads {reads}, but this task's outputs are {output_kind}"


_REGISTRY: dict[str, Strategy] = {}

# Active transfer learning: the share of the labeled units held out of training, the items whose
# correct / incorrect predictions its head learns from (loop/holdout.py). The references hold out
# a validation set without tying its size to the labeled set; a fifth is this project's choice.
HELD_OUT_FRACTION = 0.2
# The passive baseline: the strategy a run uses when none is named, and the curve comparisons
# measure the others against.
BASELINE = "random"
# What an MC-dropout request selects by default (the original project's --mc-dropout); its
# variance twin where a task's outputs have no entropy (pose's heatmaps), or when asked for.
DEFAULT_MC_STRATEGY = "mc_entropy"


def register_strategy(strategy: Strategy) -> Strategy:
    """Add a strategy to the registry (tasks may register their own, e.g. superpixel variants)."""
    if strategy.name in _REGISTRY:
        raise ValueError(f"strategy {strategy.name!r} is registered already")
    unknown = set(strategy.needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"strategy {strategy.name!r} needs unknown inputs {sorted(unknown)}")
    if (strategy.score_batch is None) == (strategy.select_set is None) and strategy.needs:
        raise ValueError(f"strategy {strategy.name!r} needs exactly one of "
                         "score_batch / select_set")
    if strategy.fit_labeled is not None and strategy.select_set is not None:
        raise ValueError(f"strategy {strategy.name!r}: only score strategies are fitted on the "
                         "labeled items")
    if strategy.presample is not None:
        first = get_strategy(strategy.presample[0])
        if first.is_set_strategy or not first.needs or first.fit_labeled is not None:
            raise ValueError(f"strategy {strategy.name!r} presamples with "
                             f"{first.name!r}, which is not a plain score strategy")
    if (strategy.region_context or strategy.select_regions) and not strategy.region_level:
        raise ValueError(f"strategy {strategy.name!r}: only region strategies read regions")
    if strategy.region_context and (PROBS not in strategy.needs or strategy.score_batch is None):
        raise ValueError(f"strategy {strategy.name!r}: a region context pools the predicted "
                         "classes of a score strategy that needs probs")
    _check_options(strategy)
    _REGISTRY[strategy.name] = strategy
    return strategy


def _check_options(strategy: Strategy) -> None:
    """Option names are unique within a strategy; a flag two strategies declare is one flag (the
    same destination), and a strategy's defaults pass its own checks."""
    names = [option.name for option in strategy.options]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy {strategy.name!r} declares an option twice: {names}")
    errors = strategy.option_errors(strategy.option_defaults())
    if errors:
        raise ValueError(f"strategy {strategy.name!r}: the default {errors[0]}")
    for other in _REGISTRY.values():
        for mine in strategy.options:
            for theirs in other.options:
                if set(mine.spellings) & set(theirs.spellings) and mine.key != theirs.key:
                    raise ValueError(f"strategy {strategy.name!r}: option {mine.name!r} spells "
                                     f"a flag of {other.name!r}'s {theirs.name!r}")


def get_strategy(name: str | Strategy) -> Strategy:
    """Look a strategy up by name; the error lists the known names."""
    if isinstance(name, Strategy):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known strategies: "
                         f"{', '.join(list_strategies())}") from None


def list_strategies() -> list[str]:
    """Names of every registered strategy, in registration order."""
    return list(_REGISTRY)


def _probability_score(function: Callable[..., torch.Tensor],
                       need: str) -> Callable[..., torch.Tensor]:
    def score(inputs: Mapping[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
        return function(inputs[need], reduction=reduction)
    return score


def _loss_prediction_score(inputs: Mapping[str, torch.Tensor],
                           reduction: str = "mean") -> torch.Tensor:
    return inputs[LOSS_PRED].reshape(-1).float()


def _expected_gradient_length(inputs: Mapping[str, torch.Tensor],
                              reduction: str = "mean") -> torch.Tensor:
    return uncertainty.expected_gradient_length(inputs[PROBS], inputs[EMBEDDING],
                                                reduction=reduction)


def rank_scores(count: int) -> np.ndarray:
    """Scores for set strategies whose output is an ordered pick list: 1, (K-1)/K, ..., 1/K
    (float64 [count]); the priority CSV then keeps the pick order."""
    return (count - np.arange(count, dtype=np.float64)) / max(count, 1)




def _coreset(inputs, labeled_embeddings, budget: int, seed: int):
    from active_learning.strategies.diversity import k_center_greedy

    candidates = torch.as_tensor(inputs[EMBEDDING]).float()           # [U, D]
    labeled = torch.as_tensor(labeled_embeddings).float().reshape(-1, candidates.shape[1])  # [L, D]
    features = torch.cat([labeled, candidates])                       # [L + U, D]
    is_labeled = np.zeros(len(features), dtype=bool)
    is_labeled[: len(labeled)] = True
    rows = k_center_greedy(features, is_labeled, budget, seed=seed)
    return rows - len(labeled), rank_scores(len(rows))


def _coreset_sharded(features, n_labeled: int, budget: int, *, offset: int, total: int,
                     seed: int) -> np.ndarray:
    from active_learning.strategies.distributed_coreset import k_center_greedy_sharded

    return k_center_greedy_sharded(features, np.arange(n_labeled), budget, offset=offset,
                                   total=total, seed=seed)


def _badge(inputs, labeled_embeddings, budget: int, seed: int):
    from active_learning.strategies.diversity import badge, badge_factored

    if GRAD_EMBEDDING in inputs:
        positions = badge(inputs[GRAD_EMBEDDING], budget, seed=seed)
    else:
        # Factored form: never materialises the [U, C*D] gradient embeddings.
        probs = torch.as_tensor(inputs[PROBS]).float()                   # [U, C]
        if probs.ndim != 2:
            raise ValueError(
                f"badge needs one class distribution per item, [U, C], got {tuple(probs.shape)}: "
                "a dense output has no single last-layer gradient per image; use coreset or an "
                "uncertainty strategy for dense tasks")
        onehot = torch.nn.functional.one_hot(probs.argmax(dim=1), probs.shape[1]).float()
        positions = badge_factored(probs - onehot, inputs[EMBEDDING], budget, seed=seed)
    return positions, rank_scores(len(positions))


def _discriminative(inputs, labeled_embeddings, budget: int, seed: int, **options):
    from active_learning.strategies.discriminative import DiscriminativeActiveLearning

    selector = DiscriminativeActiveLearning(seed=seed, **options)
    positions, _ = selector.select(labeled_embeddings, inputs[EMBEDDING], budget)
    # Rank scores keep the pick order in the CSV: P(unlabeled) values come from a different
    # discriminator in each sub-query, so sorting by them would interleave the sub-queries.
    return positions, rank_scores(len(positions))


def _typiclust(inputs, labeled_embeddings, budget: int, seed: int, **options):
    from active_learning.strategies.typicality import typiclust

    positions, _ = typiclust(labeled_embeddings, inputs[EMBEDDING], budget, seed=seed, **options)
    return positions, rank_scores(len(positions))


def _probcover(inputs, labeled_embeddings, budget: int, seed: int, **options):
    from active_learning.strategies.typicality import probcover

    positions, _, _ = probcover(labeled_embeddings, inputs[EMBEDDING], budget, seed=seed,
                                **options)
    return positions, rank_scores(len(positions))


def _cluster_margin(inputs, labeled_embeddings, budget: int, seed: int, **options):
    from active_learning.strategies.cluster_margin import cluster_margin

    positions, _ = cluster_margin(inputs[PROBS], inputs[EMBEDDING], budget, seed=seed, **options)
    # Rank scores keep the round-robin order: sorting by margin would undo the diversification.
    return positions, rank_scores(len(positions))


def _batchbald(inputs, labeled_embeddings, budget: int, seed: int, **options):
    from active_learning.strategies.batchbald import batchbald

    positions, _ = batchbald(inputs[MC_PROBS], budget, seed=seed, **options)
    return positions, rank_scores(len(positions))


def _model_outliers(inputs, labeled_embeddings, budget: int, seed: int, *, reduction: str):
    from active_learning.strategies.outliers import model_outlier_scores

    scores = model_outlier_scores(inputs[EMBEDDING], labeled_embeddings, reduction)   # [U]
    positions = top_k(scores, budget)
    return positions, scores[positions]


def _glosh_outliers(inputs, labeled_embeddings, budget: int, seed: int):
    from active_learning.strategies.outliers import hdbscan_glosh

    _, scores, _ = hdbscan_glosh(inputs[EMBEDDING])
    positions = top_k(scores, budget)
    return positions, scores[positions]


def _cluster_outliers(inputs, labeled_embeddings, budget: int, seed: int):
    from active_learning.strategies.outliers import cluster_outlier_sample, hdbscan_glosh

    labels, scores, _ = hdbscan_glosh(inputs[EMBEDDING])
    positions = cluster_outlier_sample(labels, scores, budget, np.random.default_rng(seed))
    # random draws within each cluster: the CSV keeps the pick order, cluster by cluster
    return positions, rank_scores(len(positions))


def _no_score(probs: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Zeros shaped as a score (``[N, *dense]`` with ``reduction="none"``): class-balanced
    random reads only the predicted classes the region context pools."""
    return uncertainty.reduce_dense(torch.zeros(probs.shape[:1] + probs.shape[2:]), reduction)


def _no_mix(config: Any) -> str | None:
    """A region-context strategy chooses with its own rule, which a mix would bypass."""
    if getattr(config, "random_fraction", 0.0) or getattr(config, "diversity", None):
        return (f"strategy {config.strategy!r} chooses superpixels with its own rule: it takes "
                "no --random-fraction or --diversity")
    return None


def _build_registry() -> None:
    from active_learning.strategies import discriminative, loss_prediction, regions, typicality

    register_strategy(Strategy("random", frozenset(), "uniformly random items (the baseline)"))
    for name, function, description in (
        ("least_confidence", uncertainty.least_confidence, "1 - max class probability"),
        ("margin", uncertainty.margin, "1 - (top-1 minus top-2 probability)"),
        ("ratio", uncertainty.ratio, "top-2 / top-1 probability"),
        ("entropy", uncertainty.entropy, "entropy of the predicted distribution"),
    ):
        register_strategy(Strategy(name, frozenset({PROBS}), description,
                                   score_batch=_probability_score(function, PROBS)))
    for name, mc_function, description, statistics in (
        ("mc_entropy", uncertainty.mc_entropy, "entropy of the MC-dropout mean prediction",
         {"mean"}),
        ("bald", uncertainty.bald, "BALD mutual information over MC-dropout samples",
         {"mean", "mean_entropy"}),
        ("variation_ratio", uncertainty.variation_ratio, "disagreement of MC-dropout argmaxes",
         {"votes"}),
        ("mc_variance", uncertainty.predictive_variance, "variance of MC-dropout probabilities",
         {"m2"}),
    ):
        register_strategy(Strategy(name, frozenset({MC_PROBS}), description,
                                   score_batch=_probability_score(mc_function, MC_PROBS),
                                   mc_statistics=frozenset(statistics),
                                   # a variance is meaningful for any output, e.g. heatmaps
                                   reads=ANY_OUTPUT if name == "mc_variance" else DISTRIBUTIONS,
                                   variance_twin="mc_variance" if name == "mc_entropy" else None))
    # Superpixel variants: the same scores, for region units (one unit per superpixel).
    register_strategy(Strategy("random_superpixels", frozenset(), "uniformly random superpixels",
                               region_level=True))
    quota = (regions.MAX_REGIONS_PER_IMAGE,)   # every region score takes the per-image cap
    for name in ("mc_entropy", "mc_variance", "bald"):
        base = _REGISTRY[name]
        register_strategy(Strategy(f"{name}_superpixels", base.needs,
                                   f"{base.description}, averaged over each superpixel",
                                   score_batch=base.score_batch, mc_statistics=base.mc_statistics,
                                   region_level=True, reads=base.reads & {PIXEL_DISTRIBUTIONS},
                                   variance_twin=(f"{base.variance_twin}_superpixels"
                                                  if base.variance_twin else None),
                                   options=quota))
    pixels = frozenset({PIXEL_DISTRIBUTIONS})
    for name, score, select, description in (
        ("cb_ratio_superpixels", uncertainty.ratio, regions.class_balanced_ratio,
         "Cai et al. 2021: mean best-vs-second-best ratio per superpixel, min-max normalised, "
         "x exp(-share of its predicted class)"),
        ("ripu_superpixels", uncertainty.entropy, regions.ripu,
         "RIPU (Xie et al. 2022) on superpixels: impurity x entropy over each superpixel and its "
         "neighbours, neighbours of a pick suppressed"),
        ("class_balanced_random_superpixels", _no_score, regions.class_balanced_random,
         "random superpixels, uniform over the model's predicted dominant classes"),
    ):
        register_strategy(Strategy(name, frozenset({PROBS}), description,
                                   score_batch=_probability_score(score, PROBS), region_level=True,
                                   reads=pixels, region_context=True, select_regions=select,
                                   options=quota, check_config=_no_mix))
    register_strategy(Strategy("expected_gradient_length", frozenset({PROBS, EMBEDDING}),
                               "expected norm of the last layer's gradient under the model's "
                               "prediction (Settles et al. 2008)",
                               score_batch=_expected_gradient_length,
                               reads=frozenset({CLASS_DISTRIBUTIONS})))
    register_strategy(Strategy("heatmap_uncertainty", frozenset({PROBS}),
                               "pose: 1 - mean over joints of each heatmap's peak",
                               score_batch=_probability_score(uncertainty.heatmap_uncertainty,
                                                              PROBS),
                               reads=frozenset({HEATMAPS})))
    register_strategy(Strategy("loss_prediction", frozenset({LOSS_PRED}),
                               "Learning Loss (Yoo & Kweon 2019): highest predicted loss",
                               score_batch=_loss_prediction_score,
                               options=loss_prediction.OPTIONS,
                               companion=loss_prediction.loss_prediction_companion,
                               check_config=loss_prediction.check_config,
                               requires=("scipy",)))   # Kendall's tau of the ranking
    register_strategy(Strategy("coreset", frozenset({EMBEDDING}),
                               "core-set k-center greedy on embeddings (Sener & Savarese 2018)",
                               select_set=_coreset, needs_labeled_embeddings=True,
                               select_sharded=_coreset_sharded))
    register_strategy(Strategy("badge", frozenset({GRAD_EMBEDDING}),
                               "BADGE: k-means++ on gradient embeddings (Ash et al. 2020)",
                               select_set=_badge, reads=frozenset({CLASS_DISTRIBUTIONS})))
    register_strategy(Strategy("discriminative", frozenset({EMBEDDING}),
                               "Discriminative AL (Gissin & Shalev-Shwartz 2019)",
                               select_set=_discriminative, needs_labeled_embeddings=True,
                               options=discriminative.OPTIONS,
                               keywords=frozenset({"target_accuracy", "lr", "unlabeled_ratio",
                                                   "batch_size"})))
    # Batch-aware and typicality strategies: embeddings (every task) or one class distribution
    # per image (classification).
    register_strategy(Strategy("typiclust", frozenset({EMBEDDING}),
                               "TypiClust: the most typical point of the largest uncovered k-means "
                               "clusters (Hacohen et al. 2022)",
                               select_set=_typiclust, needs_labeled_embeddings=True,
                               requires=("sklearn",),
                               keywords=frozenset({"k_neighbors", "max_clusters",
                                                   "min_cluster_size", "normalize"})))
    register_strategy(Strategy("probcover", frozenset({EMBEDDING}),
                               "ProbCover: greedy coverage of delta-balls (Yehuda et al. 2022)",
                               select_set=_probcover, needs_labeled_embeddings=True,
                               requires=("sklearn",),
                               options=typicality.PROBCOVER_OPTIONS,
                               keywords=frozenset({"alpha", "deltas", "normalize", "max_edges"})))
    register_strategy(Strategy("cluster_margin", frozenset({PROBS, EMBEDDING}),
                               "Cluster-Margin: smallest margins, round-robin over HAC clusters "
                               "(Citovsky et al. 2021)",
                               select_set=_cluster_margin, reads=frozenset({CLASS_DISTRIBUTIONS}),
                               requires=("sklearn",),
                               keywords=frozenset({"margin_factor", "cluster_size",
                                                   "hac_sample"})))
    register_strategy(Strategy("batchbald", frozenset({MC_PROBS}),
                               "BatchBALD: greedy joint mutual information over MC-dropout "
                               "samples (Kirsch et al. 2019)",
                               select_set=_batchbald, reads=frozenset({CLASS_DISTRIBUTIONS}),
                               keywords=frozenset({"joint_samples", "max_exact"})))
    _register_outlier_strategies()


def _register_outlier_strategies() -> None:
    """fsdl-active-learning's model-based outliers, clusters and GLOSH, their combinations with
    uncertainty, active transfer learning, and hidden uncertainty."""
    from active_learning.strategies.hidden_uncertainty import (
        fit_class_conditional,
        hidden_uncertainty_scores,
    )
    from active_learning.strategies.outliers import PRESAMPLE_FACTOR
    from active_learning.strategies.transfer import fit_transfer_head, transfer_scores

    sklearn = ("sklearn",)   # HDBSCAN (scikit-learn 1.3 on), GaussianMixture
    for reduction in ("mean", "max"):
        register_strategy(Strategy(
            f"mb_outliers_{reduction}", frozenset({EMBEDDING}),
            f"model-based outliers: 1 - {reduction} rank of the activations among the labeled "
            "items' (Munro 2021)",
            select_set=partial(_model_outliers, reduction=reduction),
            needs_labeled_embeddings=True))
    register_strategy(Strategy("mb_outliers_glosh", frozenset({EMBEDDING}),
                               "highest GLOSH outlier scores of HDBSCAN on the embeddings",
                               select_set=_glosh_outliers, requires=sklearn))
    register_strategy(Strategy("mb_clustering", frozenset({EMBEDDING}),
                               "HDBSCAN clusters sampled evenly, 20% of each from its GLOSH "
                               "outliers", select_set=_cluster_outliers, requires=sklearn))
    for first in ("least_confidence", "entropy"):
        register_strategy(Strategy(
            f"mb_outliers_mean_{first}", frozenset({EMBEDDING}),
            f"mb_outliers_mean among the {PRESAMPLE_FACTOR} x budget highest {first}",
            select_set=partial(_model_outliers, reduction="mean"), needs_labeled_embeddings=True,
            presample=(first, PRESAMPLE_FACTOR)))
    image_or_pixel = frozenset({CLASS_DISTRIBUTIONS, PIXEL_DISTRIBUTIONS})
    register_strategy(Strategy("active_transfer_learning", frozenset({HIDDEN}),
                               "a head on held-out labeled items predicts where the model is "
                               "wrong (Munro 2021)", score_batch=transfer_scores,
                               fit_labeled=fit_transfer_head, fitted_keyword="head",
                               held_out_fraction=HELD_OUT_FRACTION, reads=image_or_pixel))
    register_strategy(Strategy("hidden_uncertainty", frozenset({HIDDEN}),
                               "-log density of the hidden features, one Gaussian per class "
                               "(Postels et al. 2020)", score_batch=hidden_uncertainty_scores,
                               fit_labeled=fit_class_conditional, fitted_keyword="density",
                               reads=image_or_pixel, requires=sklearn))


def register_modules(package: str, path: Sequence[str]) -> list[str]:
    """Import every module of ``package`` (whose folders are ``path``) and register the
    strategies each lists in a ``STRATEGIES`` sequence, in module-name order; returns their
    names. A module without one (the built-ins' helpers) is only imported."""
    added = []
    for info in sorted(pkgutil.iter_modules(path), key=lambda module: module.name):
        module = importlib.import_module(f"{package}.{info.name}")
        for strategy in getattr(module, "STRATEGIES", ()):
            added.append(register_strategy(strategy).name)
    return added


_build_registry()
register_modules(__name__, __path__)


def clip_budget(budget: int, available: int) -> int:
    """The budget to use when only ``available`` items are left: take what is left and warn."""
    if available <= 0:
        raise ValueError("the unlabeled pool is empty: there is nothing left to select")
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    if budget > available:
        warnings.warn(f"budget {budget} is larger than the {available} unlabeled items left; "
                      f"selecting all {available}", stacklevel=3)
        return available
    return budget


def top_k(scores: np.ndarray, budget: int) -> np.ndarray:
    """Positions of the ``budget`` highest scores, best first; ties keep the earlier position."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:budget]


def _provided(need: str, inputs: Mapping[str, object]) -> bool:
    """Gradient embeddings may also come factored, as probabilities and embeddings."""
    if need == GRAD_EMBEDDING:
        return GRAD_EMBEDDING in inputs or (PROBS in inputs and EMBEDDING in inputs)
    return need in inputs


def choose_new_labeled_indices(
    strategy: str | Strategy,
    candidate_indices: np.ndarray,
    budget: int,
    *,
    scores: np.ndarray | torch.Tensor | None = None,
    inputs: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    labeled_embeddings: np.ndarray | torch.Tensor | None = None,
    reduction: str = "mean",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose which candidates to label next.

    Args:
        strategy: a registry name (see :func:`list_strategies`) or a :class:`Strategy`.
        candidate_indices: int [U] absolute dataset indices of the scored candidates.
        budget: how many to choose; clipped (with a warning) to the number of candidates.
        scores: float [U] precomputed scores (score strategies), e.g. from the loop's pass.
        inputs: what the strategy needs, each with U rows in candidate order:
            ``probs [U, C, *dense]``, ``mc_probs [T, U, C, *dense]``, ``loss_pred [U]``,
            ``embedding [U, D]``, ``grad_embedding [U, C*D]`` (or, for BADGE, ``probs [U, C]``
            with ``embedding [U, D]``: the factored form). Used when ``scores`` is None.
        labeled_embeddings: [L, D] embeddings of the labeled items (core-set, discriminative,
            TypiClust, ProbCover).
        reduction: how dense scores collapse to one per item: "mean" or "max".
        seed: seeds the random choices (random strategy, BADGE sampling, DAL training).
        options: keyword options of a set strategy, e.g. ``{"max_epochs": 100}`` for
            discriminative (``Strategy.options`` and ``Strategy.keywords``); an option the
            strategy lacks is an error.

    Returns:
        (indices int64 [K] absolute dataset indices best first, scores float64 [K]).
    """
    strategy = get_strategy(strategy)
    candidate_indices = np.asarray(candidate_indices, dtype=np.int64).reshape(-1)
    budget = clip_budget(budget, len(candidate_indices))
    inputs = dict(inputs or {})
    options = dict(options or {})
    accepts = strategy.keywords | {option.name for option in strategy.options}
    unknown = sorted(set(options) - accepts)
    if unknown:
        accepted = ", ".join(sorted(accepts)) or "none"
        raise ValueError(f"strategy {strategy.name!r} has no option(s) {unknown} "
                         f"(it accepts: {accepted})")
    missing = [need for need in strategy.needs if not _provided(need, inputs)]
    if strategy.select_set is not None:  # a set strategy
        if missing:
            raise ValueError(f"strategy {strategy.name!r} needs inputs {missing}")
        if strategy.needs_labeled_embeddings and labeled_embeddings is None:
            raise ValueError(f"strategy {strategy.name!r} needs labeled_embeddings")
        positions, chosen_scores = strategy.select_set(inputs, labeled_embeddings, budget, seed,
                                                       **options)
        positions = np.asarray(positions, dtype=np.int64)
        return candidate_indices[positions], np.asarray(chosen_scores, dtype=np.float64)
    if not strategy.needs:  # random
        rng = np.random.default_rng(seed)
        positions = rng.choice(len(candidate_indices), size=budget, replace=False)
        return candidate_indices[positions], rank_scores(budget)
    if scores is None:
        if missing:
            raise ValueError(f"strategy {strategy.name!r} needs inputs {missing} (or scores=)")
        scores = strategy.score(inputs, reduction=reduction)
    scores = torch.as_tensor(scores).detach().cpu().double().numpy().reshape(-1)
    if len(scores) != len(candidate_indices):
        raise ValueError(f"got {len(scores)} scores for {len(candidate_indices)} candidates")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    positions = top_k(scores, budget)
    return candidate_indices[positions], scores[positions]
