"""Mixed precision: one switch (``LoopConfig.amp``) for training, evaluation and scoring.

``amp="bf16"`` or ``"fp16"`` runs the model's forward passes under ``torch.autocast`` (matrix
products and convolutions in half precision, the rest as autocast decides); ``"fp16"`` also
scales the loss (``torch.amp.GradScaler``) so small gradients do not underflow, which bf16, with
fp32's exponent range, does not need. What is computed from the outputs (softmax, entropies and
their running sums, ranking losses, metrics) gets fp32 tensors: :func:`to_float` casts them back
before any of it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["AMP_MODES", "autocast", "full_precision", "grad_scaler", "memory_format", "to_float"]

AMP_MODES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _device_type(device: torch.device | str) -> str:
    return torch.device(device).type


def autocast(device: torch.device | str, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` in the ``amp`` dtype; a no-op context for ``None``."""
    if amp is None:
        return contextlib.nullcontext()
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {tuple(AMP_MODES)} or None, got {amp!r}")
    return torch.autocast(device_type=_device_type(device), dtype=AMP_MODES[amp])


def full_precision(device: torch.device | str) -> contextlib.AbstractContextManager:
    """Autocast switched off on ``device``: inside an autocast region, what must stay fp32."""
    return torch.autocast(device_type=_device_type(device), enabled=False)


def grad_scaler(device: torch.device | str, amp: str | None) -> torch.amp.GradScaler:
    """A loss scaler, enabled for fp16 only (a disabled one passes everything through)."""
    return torch.amp.GradScaler(_device_type(device), enabled=amp == "fp16")


def to_float(value: Any) -> Any:
    """``value`` with every half-precision floating tensor in it (also inside lists, tuples and
    dicts, e.g. a detector's outputs) cast to float32; everything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
    if isinstance(value, Mapping):
        return {key: to_float(item) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):      # a named tuple
        return type(value)(*(to_float(item) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_float(item) for item in value)
    return value


def memory_format(inputs: Any, channels_last: bool) -> Any:
    """``inputs`` with its image batches ``[B, C, H, W]`` in channels-last (NHWC) memory when
    ``channels_last``: with the model's weights in that format too (the runner converts them),
    convolutions run without converting layouts (tensor cores on GPUs, oneDNN on CPUs). The
    values and shapes do not change; other inputs pass through."""
    if not channels_last:
        return inputs
    if isinstance(inputs, torch.Tensor):
        return inputs.contiguous(memory_format=torch.channels_last) if inputs.ndim == 4 else inputs
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(memory_format(value, channels_last) for value in inputs)
    return inputs
