"""Write tiny weights files where the libraries' caches keep downloaded ones.

The tests never download: a test of a named pretrained start (a torchvision weights name, a
published file, a timm name) first writes the file the name stands for into the per-session
cache that ``conftest.py`` points ``TORCH_HOME`` / ``HF_HOME`` at.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from active_learning.files.pretrained import hub_checkpoint_path


def distinct_values(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of ``state`` where tensor number k is filled with k + 0.5 (integer tensors: k), so
    a test can tell which file tensor ended up in which layer."""
    return {key: torch.full_like(value, index + (0.5 if value.is_floating_point() else 0))
            for index, (key, value) in enumerate(state.items())}


def write_hub_checkpoint(filename: str, state: Mapping[str, torch.Tensor]) -> Path:
    """``state`` saved where torch.hub keeps a downloaded ``filename`` (torchvision's weights
    and the published files of reference projects)."""
    path = hub_checkpoint_path(filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state), path)
    return path


def write_timm_cache(hub_id: str, state: Mapping[str, torch.Tensor]) -> Path:
    """``state`` as ``model.safetensors`` of the Hugging Face repository ``hub_id`` (e.g.
    ``timm/hrnet_w18_small.gluon_in1k``), in the hub cache's layout (refs/main -> a snapshot)."""
    from safetensors.torch import save_file

    cache = Path(os.environ["HF_HOME"]) / "hub"
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    path = snapshot / "model.safetensors"
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    return path
