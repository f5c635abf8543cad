"""The model a round trained, loaded again to pre-annotate its proposals."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["load_trained_model", "model_predictions", "previous_model"]


def previous_model(workspace_dir: Path, number: int) -> Path | None:
    """The trained model of the round before round ``number`` (``--warm-start``), if it has
    one."""
    path = workspace_dir / f"round_{number - 1:03d}" / "run" / "checkpoints" / "cycle_00.pt"
    return path if path.exists() else None


def load_trained_model(adapter: Any, checkpoint: Path, device: str) -> Any:
    """The model a round trained: ``adapter.build_model()`` with the state of ``checkpoint``
    (``run/checkpoints/cycle_00.pt``, which the round's run saves), on ``device``, in eval
    mode (no dropout)."""
    from active_learning.files.weights import load_weights_file

    model = adapter.build_model()
    load_weights_file(model, checkpoint, flag="the round's model")
    return model.to(device).eval()


def model_predictions(built: Any, run_dir: Path, device: str
                      ) -> Callable[[str], Any] | None:
    """``built.predict`` bound to the round's trained model: ``name -> ImagePrediction | None``
    (None when the task has no ``predict``). The model is loaded from the run's
    ``checkpoints/cycle_00.pt`` on the first call, once; each call runs without gradients."""
    predict = getattr(built, "predict", None)
    if predict is None:
        return None
    checkpoint = Path(run_dir) / "checkpoints" / "cycle_00.pt"
    loaded: list[Any] = []

    def prediction(name: str) -> Any:
        import torch

        if not loaded:
            loaded.append(load_trained_model(built.adapter, checkpoint, device))
        with torch.inference_mode():
            return predict(loaded[0], name)

    return prediction
