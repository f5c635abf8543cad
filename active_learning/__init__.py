"""Active learning for computer vision: choose which images (or regions) to label next.

Public API (see DESIGN.md):
    ActiveLearning, LossPredictionModule, LossPredictionLoss -- Learning Loss (Yoo & Kweon 2019)
    DiscriminativeActiveLearning                              -- DAL (Gissin & Shalev-Shwartz 2019)
    choose_new_labeled_indices, get_strategy, list_strategies -- the strategy registry
    write_entropies_csv                                       -- the priority CSV
    PoolState                                                 -- labeled-at-cycle bookkeeping
"""
from .discriminative import DiscriminativeActiveLearning
from .export import write_entropies_csv
from .loss_prediction import ActiveLearning, LossPredictionLoss, LossPredictionModule
from .pool import PoolState
from .strategies import choose_new_labeled_indices, get_strategy, list_strategies

__all__ = [
    "ActiveLearning",
    "DiscriminativeActiveLearning",
    "LossPredictionLoss",
    "LossPredictionModule",
    "PoolState",
    "choose_new_labeled_indices",
    "get_strategy",
    "list_strategies",
    "write_entropies_csv",
]
