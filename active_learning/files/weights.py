"""Reading local weights files and loading them into a model, with one clear error per problem.

Every task takes weights from the command line (``--weights``, ``--pretrained``, ``--resume``,
``--basenet``). They all go through here so that they accept the same files and fail the same
way:

* :func:`read_state_dict` opens a file with ``torch.load(..., weights_only=True)`` (never
  unpickling arbitrary objects), unwraps a checkpoint whose state dict sits under
  ``"state_dict"``, ``"model"`` or ``"net"`` (nested too) and strips the ``module.`` prefix of
  ``DataParallel`` / ``DistributedDataParallel``.
* :func:`load_state_dict_checked` compares the tensors with the model's and names the missing,
  unexpected and mis-shaped layers before loading anything; ``strict=False`` initialises part of
  a model (a backbone) from the keys both have.
* :func:`load_weights_file` does both.

Each failure is one :class:`~active_learning.errors.WeightsError` line that names the flag and
the file, so the command line prints it as one ``error:`` line instead of a traceback.
"""
from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from active_learning.errors import WeightsError

__all__ = ["WRAPPER_KEYS", "format_keys", "load_state_dict_checked", "load_weights_file",
           "read_state_dict"]

# Where training scripts put the state dict inside a checkpoint: Lightning and most scripts use
# "state_dict", this project's loop and torchvision's references "model", some papers' code "net".
WRAPPER_KEYS = ("state_dict", "model", "net")
DATA_PARALLEL_PREFIX = "module."
SHOWN = 5  # names listed per kind of problem; a model has hundreds of layers


def read_state_dict(path: str | os.PathLike, *, flag: str = "weights") -> dict[str, torch.Tensor]:
    """The state dict stored in the local file ``path``, on the CPU.

    Accepts a plain state dict, or a checkpoint dict holding it under ``"state_dict"``,
    ``"model"`` or ``"net"`` (also nested, e.g. ``{"model": {"state_dict": ...}}``); strips the
    ``module.`` prefix that ``DataParallel`` / ``DistributedDataParallel`` add to every key.

    Args:
        path: the weights file.
        flag: the command-line flag (or argument) the path came from, e.g. ``"--resume"``: the
            error message names it so the user knows which of several files is wrong.

    Raises:
        WeightsError: the file is missing or a folder, is not a PyTorch checkpoint (text, random
            bytes, truncated, or pickled Python objects other than tensors), or holds no dict
            of tensors. One line naming ``flag`` and ``path``.
    """
    where = f"{flag} file {os.fspath(path)}"
    if not os.path.exists(path):
        raise WeightsError(f"{where}: no such file")
    if os.path.isdir(path):
        raise WeightsError(f"{where}: is a folder, not a weights file")
    if not os.path.isfile(path):
        raise WeightsError(f"{where}: is not a regular file")
    state = _load(path, where)
    state = _unwrap(state, where)
    return _strip_data_parallel(state, where)


def load_state_dict_checked(module: nn.Module, state: Mapping[str, torch.Tensor], *,
                            path: str | os.PathLike, flag: str = "weights", strict: bool = True,
                            hint: str = "") -> list[str]:
    """Load ``state`` into ``module`` after checking that it fits; returns the loaded keys, sorted.

    ``strict=True``: the keys must be exactly the module's, with the module's shapes.
    ``strict=False`` (initialising a backbone from a classifier, say): only keys that both have
    are loaded and the module's other tensors keep their values; a shape mismatch on such a key
    is still an error, and so is a file that shares no key with the module.

    Nothing is loaded when the check fails, so the module is never left half-initialised.

    Args:
        module: the model (or the part of it) to load into.
        state: tensors by key, usually from :func:`read_state_dict`.
        path, flag: the file and the flag it came from, named in the error message.
        strict: whether every key of the module and of ``state`` must be matched.
        hint: appended to the error message in parentheses, e.g. ``"same --width?"``.

    Raises:
        WeightsError: one line listing the missing keys, the unexpected keys and the layers
            whose shapes differ (at most five of each, with their count).
    """
    own = module.state_dict()
    where = f"{flag} file {os.fspath(path)}"
    suffix = f" ({hint})" if hint else ""
    shared = [key for key in state if key in own]
    mismatched = [f"{key}: file {_shape(state[key])} vs model {_shape(own[key])}"
                  for key in shared if _shape(state[key]) != _shape(own[key])]
    problems = []
    if strict:
        problems.append(("missing keys", [key for key in own if key not in state]))
        problems.append(("unexpected keys", [key for key in state if key not in own]))
    problems.append(("shape mismatches", mismatched))
    found = [f"{label} ({len(keys)}): {format_keys(keys)}" for label, keys in problems if keys]
    if found:
        raise WeightsError(f"{where} does not fit the model: {'; '.join(found)}{suffix}")
    if not shared:
        raise WeightsError(f"{where} shares no layer with the model: the file has "
                           f"{format_keys(state)} ({len(state)} keys), the model "
                           f"{format_keys(own)} ({len(own)} keys){suffix}")
    # strict=False here only skips the model keys the file lacks; the checks above already
    # refused every other difference, with a better message than torch's.
    module.load_state_dict({key: state[key] for key in shared}, strict=strict)
    return sorted(shared)


def load_weights_file(module: nn.Module, path: str | os.PathLike, *, flag: str = "weights",
                      strict: bool = True, hint: str = "") -> list[str]:
    """:func:`read_state_dict` then :func:`load_state_dict_checked`; returns the loaded keys."""
    state = read_state_dict(path, flag=flag)
    return load_state_dict_checked(module, state, path=path, flag=flag, strict=strict, hint=hint)


def format_keys(keys: Iterable[str], limit: int = SHOWN) -> str:
    """The first ``limit`` keys, comma-separated, then ``...`` if there are more (for messages)."""
    keys = list(keys)
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def _load(path: str | os.PathLike, where: str) -> object:
    # torch.load warns about odd pickle protocols before failing on the same file; the error
    # below says all there is to say, so the warnings come out only if the load succeeds.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # torch's own message is a page of advice about weights_only=False, which would run
            # whatever code the file holds: not advice to pass on for a file of unknown origin.
            raise WeightsError(f"{where}: not a weights file (it holds pickled Python objects "
                               "other than tensors, or is not a checkpoint at all)") from None
        except OSError as error:
            raise WeightsError(f"{where}: cannot be read ({error.strerror or error})") from None
        except Exception:  # noqa: BLE001 - zip, EOF and key errors all mean a damaged file
            raise WeightsError(f"{where}: not a PyTorch checkpoint (empty, truncated or another "
                               "kind of file)") from None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return state


def _unwrap(state: object, where: str) -> dict:
    # A checkpoint may wrap the state dict more than once ({"model": {"state_dict": ...}}); a
    # dict value can never be a layer, so descending into one is safe.
    while isinstance(state, Mapping):
        inner = next((state[key] for key in WRAPPER_KEYS if isinstance(state.get(key), Mapping)),
                     None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, Mapping):
        raise WeightsError(f"{where}: holds a {type(state).__name__}, not a state dict")
    others = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not state or others:
        what = f"keys {format_keys([str(key) for key in state])}" if state else "nothing"
        raise WeightsError(f"{where}: holds no state dict (a dict of tensors, or a checkpoint with "
                           f"one under {', '.join(map(repr, WRAPPER_KEYS))}); it has {what}")
    return dict(state)


def _strip_data_parallel(state: dict, where: str) -> dict[str, torch.Tensor]:
    stripped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = str(key)
        while name.startswith(DATA_PARALLEL_PREFIX):  # DDP around DataParallel doubles it
            name = name[len(DATA_PARALLEL_PREFIX):]
        if name in stripped:
            raise WeightsError(f"{where}: holds {name!r} both with and without the "
                               f"{DATA_PARALLEL_PREFIX!r} prefix")
        stripped[name] = value
    return stripped


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)
