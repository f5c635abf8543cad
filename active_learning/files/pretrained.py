"""Pretrained weights named the way their ecosystem names them, resolved from the usual caches.

A user starts from published weights; ``--weights`` and ``--weights-backbone`` take any of:

* a local file (a state dict or a checkpoint, read by
  :func:`active_learning.files.weights.read_state_dict`);
* a torchvision weights name, ``VGG16_Weights.IMAGENET1K_FEATURES`` or
  ``SSD300_VGG16_Weights.COCO_V1``: the file torchvision would download, in torch.hub's cache
  (``$TORCH_HOME/hub/checkpoints``);
* a timm model name with its pretrained tag, ``timm:hrnet_w32.ms_in1k``: the model timm builds
  with ``pretrained=True``, from timm's cache (the Hugging Face hub cache, or torch.hub's for the
  older URL weights);
* the file name a reference project publishes, ``vgg16_reducedfc.pth`` (ssd.pytorch) or
  ``drn_d_22-4bd2f8ea.pth`` (fyu/drn): each task lists its own as :class:`PublishedCheckpoint`
  and the file is looked for in torch.hub's cache, where ``torch.hub`` itself would put it.

A cached file is used without touching the network, so a machine that fetched the weights once
works offline. A missing one is downloaded into that same cache unless ``ACTIVE_LEARNING_OFFLINE``
is set (the test suite sets it); when it cannot be had, the one :class:`WeightsError` says which
file is missing, where it was looked for, where to get it, and that ``--from-scratch`` trains
without it. There is no silent fallback to random weights.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from active_learning.errors import WeightsError
from active_learning.extras import require
from active_learning.files.weights import read_state_dict

__all__ = ["OFFLINE_VARIABLE", "PublishedCheckpoint", "describe_spec", "downloads_allowed",
           "hub_checkpoint_path", "load_named_state", "spec_kind"]

log = logging.getLogger(__name__)

OFFLINE_VARIABLE = "ACTIVE_LEARNING_OFFLINE"
TIMM_PREFIX = "timm:"
# torchvision's weight enums are all "<Model>_Weights.<NAME>" (VGG16_Weights.IMAGENET1K_V1,
# SSD300_VGG16_Weights.COCO_V1, ResNet18_Weights.DEFAULT).
TORCHVISION_NAME = re.compile(r"^[A-Za-z0-9_]+_Weights\.[A-Za-z0-9_]+$")
# Hugging Face repositories hold timm's weights under one of these names (timm tries them in
# this order).
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
FROM_SCRATCH_ADVICE = "or pass --from-scratch to train from random weights"


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A weights file a reference project publishes under a fixed name.

    Attributes:
        filename: the published name, e.g. ``"vgg16_reducedfc.pth"``; the cache keeps it.
        url: where it is published; downloaded from there into torch.hub's cache.
        source: who publishes it, for messages (``"amdegroot/ssd.pytorch"``).
    """

    filename: str
    url: str
    source: str


def downloads_allowed() -> bool:
    """False when ``ACTIVE_LEARNING_OFFLINE`` is set to anything but ``""``/``0``/``false``."""
    value = os.environ.get(OFFLINE_VARIABLE, "").strip().lower()
    return value in ("", "0", "false", "no")


def hub_checkpoint_path(filename: str) -> Path:
    """Where torch.hub keeps a downloaded checkpoint: ``torch.hub.get_dir()/checkpoints/<name>``
    (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def spec_kind(spec: str, published: Sequence[PublishedCheckpoint] = ()) -> str:
    """What ``spec`` names: ``"timm"``, ``"file"`` (an existing path), ``"torchvision"``,
    ``"published"`` or ``"missing file"`` (a path that does not exist)."""
    if spec.startswith(TIMM_PREFIX):
        return "timm"
    if os.path.exists(spec):
        return "file"
    if TORCHVISION_NAME.match(spec):
        return "torchvision"
    if any(spec == checkpoint.filename for checkpoint in published):
        return "published"
    return "missing file"


def describe_spec(spec: str, published: Sequence[PublishedCheckpoint] = ()) -> str:
    """A short phrase for logs: ``"torchvision weights VGG16_Weights.IMAGENET1K_FEATURES"``."""
    kind = spec_kind(spec, published)
    if kind == "timm":
        return f"timm's pretrained {spec[len(TIMM_PREFIX):]}"
    if kind == "published":
        source = next(c.source for c in published if c.filename == spec)
        return f"{source}'s {spec}"
    return f"torchvision weights {spec}" if kind == "torchvision" else f"file {spec}"


def load_named_state(spec: str, *, flag: str, published: Sequence[PublishedCheckpoint] = (),
                     advice: str = FROM_SCRATCH_ADVICE) -> dict[str, torch.Tensor]:
    """The state dict named by ``spec``: CPU tensors, checkpoint wrappers unwrapped, ``module.``
    stripped (see the module docstring for what ``spec`` may be).

    Args:
        spec: a local path, a torchvision weights name, ``timm:<name>``, or the file name of one
            of ``published``.
        flag: the flag it came from (``"--weights-backbone"``), named in every message.
        published: the files the task's reference projects publish.
        advice: what a message about a file that cannot be had suggests instead (``--from-
            scratch`` for a model's start; a flag without that way out says its own).

    Raises:
        WeightsError: the name is unknown, the file is not cached and cannot be downloaded, or
            it is not a weights file; one line.
    """
    kind = spec_kind(spec, published)
    if kind == "timm":
        return _timm_state(spec[len(TIMM_PREFIX):], flag, advice)
    if kind == "file":
        return read_state_dict(spec, flag=flag)
    if kind == "torchvision":
        url = _torchvision_url(spec, flag)
        return _read_cached(spec, url, Path(url).name, flag, hash_prefix=True, advice=advice)
    if kind == "published":
        checkpoint = next(c for c in published if c.filename == spec)
        return _read_cached(f"{spec} ({checkpoint.source})", checkpoint.url, checkpoint.filename,
                            flag, hash_prefix=False, advice=advice)
    if _looks_like_path(spec):
        return read_state_dict(spec, flag=flag)  # raises: no such file
    raise _unknown_name(spec, flag, published)


def _looks_like_path(spec: str) -> bool:
    # "weights/model.pth" and "model.pth" are files that are not there; "vgg16" is a name we do
    # not know, and its message lists the names we do.
    return "/" in spec or os.sep in spec or Path(spec).suffix != ""


def _unknown_name(spec: str, flag: str,
                  published: Sequence[PublishedCheckpoint]) -> WeightsError:
    names = ", ".join(c.filename for c in published)
    known = f"; the published files this task knows are {names}" if names else ""
    return WeightsError(f"{flag} {spec}: no such file, and not a torchvision weights name "
                       f"(e.g. VGG16_Weights.IMAGENET1K_FEATURES) or a timm name "
                       f"(timm:<model>.<tag>){known}")


def _torchvision_url(spec: str, flag: str) -> str:
    get_weight = require("torchvision.models", f"{flag} {spec}").get_weight

    try:
        weights = get_weight(spec)
    except (ValueError, KeyError, AttributeError):
        raise WeightsError(f"{flag} {spec}: torchvision has no such weights (names look like "
                           "VGG16_Weights.IMAGENET1K_FEATURES; see torchvision.models."
                           "list_models and get_model_weights)") from None
    return str(weights.url)


def _read_cached(what: str, url: str, filename: str, flag: str, *, hash_prefix: bool,
                 advice: str = FROM_SCRATCH_ADVICE) -> dict[str, torch.Tensor]:
    """The state dict of the cached (or just downloaded) file. A download that is not a weights
    file (a web page served in its place, say) is deleted, so the next run does not find it."""
    cached = hub_checkpoint_path(filename).is_file()
    path = _cached_or_downloaded(what, url, filename, flag, hash_prefix=hash_prefix,
                                 advice=advice)
    try:
        return read_state_dict(path, flag=f"{flag} {what}:")
    except WeightsError as error:
        if cached:
            raise
        path.unlink(missing_ok=True)
        raise WeightsError(f"{error}; it was downloaded from {url} and is deleted: get the file "
                           f"from its publisher, {advice}") from None


def _cached_or_downloaded(what: str, url: str, filename: str, flag: str, *, hash_prefix: bool,
                          advice: str = FROM_SCRATCH_ADVICE) -> Path:
    """The cached file, downloaded first if it is missing and downloads are allowed."""
    path = hub_checkpoint_path(filename)
    if path.is_file():
        log.info("%s %s: %s", flag, what, path)
        return path
    how = f"download {url} to {path}, {advice}"
    if not downloads_allowed():
        raise WeightsError(f"{flag} {what}: not in torch.hub's cache ({path}) and downloads are "
                           f"off ({OFFLINE_VARIABLE} is set): {how}")
    # torch.hub names published files "<name>-<first hex digits of their sha256>.pth" and checks
    # that prefix after a download, as torchvision's own loader does.
    prefix = None
    if hash_prefix:
        match = torch.hub.HASH_REGEX.search(filename)
        prefix = match.group(1) if match else None
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("%s %s: downloading %s to %s", flag, what, url, path)
    try:
        # download_url_to_file writes a temporary file and renames it: no half file is left.
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise WeightsError(f"{flag} {what}: not in torch.hub's cache ({path}) and the download "
                           f"failed ({_reason(error)}): {how}") from None
    return path


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return str(reason).splitlines()[0] if str(reason) else type(error).__name__


def _hf_cache_dir() -> Path:
    # Read at call time, not from huggingface_hub's constants (fixed when it is imported), so
    # that HF_HOME set after the import (tests, notebooks) is honoured.
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def _timm_cached_file(config: Any) -> Path | None:
    """The file timm would load for ``config`` (a PretrainedCfg) if it is cached, else None."""
    hub_id = getattr(config, "hf_hub_id", None)
    if hub_id:
        try_to_load_from_cache = require("huggingface_hub",
                                         "timm's weights cache").try_to_load_from_cache
        names = (config.hf_hub_filename,) if getattr(config, "hf_hub_filename", None) \
            else HF_WEIGHT_FILES
        for name in names:
            found = try_to_load_from_cache(hub_id, name, cache_dir=str(_hf_cache_dir()))
            if isinstance(found, str):
                return Path(found)
    url = getattr(config, "url", None)
    if url:
        path = hub_checkpoint_path(Path(url).name)
        return path if path.is_file() else None
    return None


def _timm_state(name: str, flag: str, advice: str = FROM_SCRATCH_ADVICE
                ) -> dict[str, torch.Tensor]:
    """timm's model ``name`` with its pretrained weights, as a state dict.

    The model is built by timm, so its own key conversions (``filter_fn``) apply; a cached file
    is handed to timm as a local file, so no network call is made for it."""
    timm = require("timm", f"{flag} {name}")
    get_pretrained_cfg = require("timm.models", f"{flag} {name}").get_pretrained_cfg

    try:
        config = get_pretrained_cfg(name)
    except (RuntimeError, ValueError, KeyError):
        config = None
    if config is None or not (config.hf_hub_id or config.url or config.file):
        raise WeightsError(f"{flag} timm:{name}: timm has no pretrained weights of that name "
                           "(e.g. timm:hrnet_w32.ms_in1k; timm.list_pretrained() lists them)")
    where = f"Hugging Face repository {config.hf_hub_id}" if config.hf_hub_id else config.url
    cached = _timm_cached_file(config)
    if cached is not None:
        log.info("%s timm:%s: %s", flag, name, cached)
        overlay: dict[str, Any] = {"file": str(cached)}
    elif downloads_allowed():
        log.info("%s timm:%s: downloading from %s", flag, name, where)
        overlay = {}
    else:
        raise WeightsError(f"{flag} timm:{name}: not in timm's cache ({_hf_cache_dir()}) and "
                           f"downloads are off ({OFFLINE_VARIABLE} is set): fetch it from "
                           f"{where} on a machine with internet, {advice}")
    try:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay)
    except (OSError, RuntimeError, ValueError) as error:
        if cached is not None:
            raise WeightsError(f"{flag} timm:{name}: the cached file {cached} does not load "
                               f"({_reason(error)}); delete it to download it again") from None
        raise WeightsError(f"{flag} timm:{name}: not in timm's cache and the download from "
                           f"{where} failed ({_reason(error)}): {advice}") from None
    return {key: value.detach().cpu() for key, value in model.state_dict().items()}
