"""Monte-Carlo dropout sampling that runs the deterministic part of the network only once.

T stochastic passes are taken with only the dropout layers active: the model is in eval mode
(BatchNorm uses its running statistics) and the dropout modules are switched to train mode.

The naive way (baal, DeepAL, modAL) runs the whole network T times. Everything that does not
depend on a dropout layer gives the same result in each of those passes, so here the model is
traced once with torch.fx and split in two:

    prefix:  input -> the "frontier", the deterministic values that feed the stochastic part
    suffix:  frontier -> output, every node that is a dropout call or depends on one

The prefix runs once per batch and the suffix T times. This works wherever the dropout sits,
also deep inside a network (e.g. after each residual stage): the frontier is then the input of
the first dropout plus every skip connection that bypasses it.

Submodules that contain no dropout are kept opaque (fx leaves), so data-dependent control flow
inside them does not break tracing. If tracing still fails (e.g. an `if x.sum() > 0:` on a path
that contains dropout), the sampler warns and falls back to T full forward passes.

Not covered: functional dropout (F.dropout(x, training=self.training)) is not a module, so it is
invisible to the sampler and stays inactive in eval mode; other random ops in the deterministic
part (e.g. torch.randn_like outside a dropout module) are evaluated once per batch, not T times.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "DROPOUT_TYPES",
    "mc_dropout_mode",
    "has_dropout",
    "MCDropoutSampler",
    "mc_dropout_predict",
]

DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

# Python operators that mutate their first argument (`a += b`, `a[i] = b` in a traced forward).
_INPLACE_OPERATORS = {
    operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
    operator.imod, operator.ipow, operator.iand, operator.ior, operator.ixor,
    operator.ilshift, operator.irshift, operator.imatmul, operator.setitem,
}  # fmt: skip


# ---- modes ------------------------------------------------------------------------------


def has_dropout(model: nn.Module) -> bool:
    """True if `model` is, or contains, an nn.Dropout-family module."""
    return any(isinstance(m, DROPOUT_TYPES) for m in model.modules())


@contextmanager
def mc_dropout_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode with only its dropout modules in train mode.

    Every module's previous `training` flag is restored on exit, also after an exception.
    """
    previous = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in model.modules():
            if isinstance(m, DROPOUT_TYPES):
                m.train()
        yield model
    finally:
        for m, was_training in previous:
            m.training = was_training


# ---- tracing and splitting --------------------------------------------------------------


def _make_tracer() -> Any:
    """An fx Tracer that keeps dropout-free submodules opaque and traces through the rest."""
    import torch.fx as fx

    class _DropoutAwareTracer(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            if isinstance(m, DROPOUT_TYPES):
                return True  # also user subclasses defined outside torch.nn
            if has_dropout(m):
                return False  # trace inside, to find where the randomness enters
            # Deterministic as a whole: one node is enough, and control flow inside it
            # (which fx could not trace) runs normally at call time.
            return True

    return _DropoutAwareTracer()


def _is_inplace(node: Any, modules: dict[str, nn.Module]) -> bool:
    """Does this node mutate its first argument?"""
    if node.op == "call_module":
        return bool(getattr(modules.get(node.target), "inplace", False))
    if node.op == "call_function":
        if node.target in _INPLACE_OPERATORS or node.kwargs.get("inplace", False):
            return True
        name = getattr(node.target, "__name__", "")
        return name.endswith("_") and not name.endswith("__")  # torch.relu_, F.relu_
    if node.op == "call_method":
        return node.target.endswith("_") and not node.target.endswith("__")  # x.add_(y)
    return False


def _stochastic_nodes(graph: Any, modules: dict[str, nn.Module]) -> set[Any]:
    """Nodes whose value can differ between MC passes: dropout calls and their dependents."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    stochastic: set[Any] = set()

    def propagate() -> None:
        for n in graph.nodes:
            if n.op == "output" or n in stochastic:
                continue
            m = modules.get(n.target) if n.op == "call_module" else None
            # A leaf that contains dropout (only with a plain tracer) counts as dropout.
            reads_stochastic = any(a in stochastic for a in n.all_input_nodes)
            if (m is not None and has_dropout(m)) or reads_stochastic:
                stochastic.add(n)

    propagate()
    # An in-place op in the deterministic part that runs *after* a stochastic node has read
    # its target would, once hoisted into the prefix, change what that node sees. Move such
    # ops into the stochastic part (they then work on a per-pass copy, see _split).
    changed = True
    while changed:
        changed = False
        for n in graph.nodes:
            if n in stochastic or not _is_inplace(n, modules) or not n.args:
                continue
            target = n.args[0]
            if hasattr(target, "users") and any(
                u in stochastic and order[u] < order[n] for u in target.users
            ):
                stochastic.add(n)
                changed = True
        if changed:
            propagate()
    return stochastic


class _Split:
    """The traced model cut into a once-per-batch prefix and a T-times suffix."""

    def __init__(self, model: nn.Module) -> None:
        import torch.fx as fx

        tracer = _make_tracer()
        graph = tracer.trace(model)
        traced = fx.GraphModule(tracer.root, graph)
        modules = dict(traced.named_modules())
        nodes = list(graph.nodes)
        stochastic = _stochastic_nodes(graph, modules)
        in_suffix = stochastic | {n for n in nodes if n.op == "output"}

        # get_attr nodes (parameters read directly in forward) are copied, never cached.
        frontier = [
            n for n in nodes
            if n not in in_suffix and n.op != "get_attr" and any(u in in_suffix for u in n.users)
        ]  # fmt: skip
        depends_on_input = self._input_dependent(nodes)

        prefix_graph = fx.Graph()
        env: dict[Any, Any] = {}
        for n in nodes:
            if n not in in_suffix:
                env[n] = prefix_graph.node_copy(n, lambda a: env[a])
        prefix_graph.output(tuple(env[f] for f in frontier))

        suffix_graph = fx.Graph()
        env = {f: suffix_graph.placeholder(f.name) for f in frontier}
        for n in nodes:
            if n in in_suffix or (n.op == "get_attr" and any(u in in_suffix for u in n.users)):
                env[n] = suffix_graph.node_copy(n, lambda a: env[a])

        self.prefix = fx.GraphModule(traced, prefix_graph)
        self.suffix = fx.GraphModule(traced, suffix_graph)
        # Frontier values the suffix mutates in place must be copied for every pass.
        mutated = {n.args[0] for n in stochastic if n.args and _is_inplace(n, modules)}
        self.clone_mask = [f in mutated for f in frontier]
        self.batch_mask = [f in depends_on_input for f in frontier]
        # Identity of every submodule / attribute the graphs use, to notice a stale trace.
        self.bindings = []
        for n in nodes:
            if n.op in ("call_module", "get_attr"):
                try:
                    self.bindings.append((n.op, n.target, self._fetch(model, n.op, n.target)))
                except AttributeError:
                    pass  # a constant fx created while tracing (_tensor_constant0): not the model's

    @staticmethod
    def _input_dependent(nodes: list[Any]) -> set[Any]:
        dependent: set[Any] = set()
        for n in nodes:
            if n.op == "placeholder" or any(a in dependent for a in n.all_input_nodes):
                dependent.add(n)
        return dependent

    @staticmethod
    def _fetch(model: nn.Module, op: str, target: str) -> Any:
        if op == "call_module":
            return model.get_submodule(target)
        owner, _, name = target.rpartition(".")
        return getattr(model.get_submodule(owner), name)

    def is_stale(self, model: nn.Module) -> bool:
        """True if a submodule or attribute was replaced (e.g. by model.to() on a buffer)."""
        try:
            return any(self._fetch(model, op, t) is not obj for op, t, obj in self.bindings)
        except AttributeError:
            return True


# ---- the sampler ------------------------------------------------------------------------


class MCDropoutSampler:
    """T MC-dropout passes over a batch, running the dropout-free prefix once.

    sampler = MCDropoutSampler(model)          # traces once
    probs = sampler.sample(x, 20, output_fn=lambda y: y.softmax(1))   # [T, B, C]

    Attributes:
        uses_cached_prefix: False when tracing failed and each pass runs the full model.
    """

    def __init__(self, model: nn.Module) -> None:
        if not has_dropout(model):
            raise ValueError(
                f"model ({type(model).__name__}) has no dropout module "
                f"({', '.join(t.__name__ for t in DROPOUT_TYPES)}); MC dropout needs one"
            )
        self.model = model
        self._split: _Split | None = None
        self.uses_cached_prefix = False
        self._build()

    def _build(self) -> None:
        try:
            with mc_dropout_mode(self.model):
                # Traced in MC mode so `self.training` checks in traced code read as at sampling.
                self._split = _Split(self.model)
            self.uses_cached_prefix = True
        except Exception as exc:  # fx raises many types (TraceError, TypeError, ...)
            self._split = None
            self.uses_cached_prefix = False
            warnings.warn(
                f"MCDropoutSampler: torch.fx could not trace {type(self.model).__name__} "
                f"({type(exc).__name__}: {exc}); falling back to full forward passes, "
                "which recompute the layers before the dropout for every sample",
                RuntimeWarning,
                stacklevel=3,
            )

    def sample(
        self,
        inputs: Tensor,
        n_samples: int,
        output_fn: Callable[[Any], Tensor] | None = None,
        batch_samples: bool = False,
    ) -> Tensor:
        """Draw `n_samples` MC-dropout predictions for one batch.

        inputs: [B, ...] -> [T, B, *out] where T = n_samples and *out is the shape of one
        (output_fn-transformed) model output per image. output_fn (e.g. softmax) is applied to
        each pass's output before stacking, so raw outputs are never all held at once.
        batch_samples=True runs the T passes as one [T*B, ...] batch (faster on GPU, T times
        the activation memory of the stochastic part).
        """
        if not isinstance(inputs, Tensor) or inputs.ndim < 1:
            raise ValueError("inputs must be a tensor with a batch dimension, [B, ...]")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        if self._split is not None and self._split.is_stale(self.model):
            self._build()  # a submodule or buffer was replaced since the trace
        output_fn = output_fn or _identity

        with torch.inference_mode(), mc_dropout_mode(self.model):
            if batch_samples:
                if self._split is None:
                    return self._run_batched(
                        inputs, n_samples, output_fn, self.model, [inputs], [True]
                    )
                frontier = self._split.prefix(inputs)
                if self._can_batch(self._split, frontier, inputs.shape[0]):
                    return self._run_batched(
                        inputs, n_samples, output_fn, self._split.suffix, frontier,
                        self._split.batch_mask,
                    )
        return _stack_passes(n_samples, self.passes(inputs, n_samples, output_fn))

    def passes(
        self,
        inputs: Tensor,
        n_samples: int,
        output_fn: Callable[[Any], Tensor] | None = None,
    ) -> Iterator[Tensor]:
        """Yield the `n_samples` MC-dropout outputs of one batch one at a time: [B, *out] each.

        What streaming scores need (see ``mc_statistics``): a consumer that folds each pass
        into running sums holds O(B * out) memory, whatever T is. The prefix runs once.
        """
        if not isinstance(inputs, Tensor) or inputs.ndim < 1:
            raise ValueError("inputs must be a tensor with a batch dimension, [B, ...]")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        if self._split is not None and self._split.is_stale(self.model):
            self._build()
        output_fn = output_fn or _identity
        with torch.inference_mode(), mc_dropout_mode(self.model):
            if self._split is None:
                for _ in range(n_samples):
                    yield output_fn(self.model(inputs))
                return
            split = self._split
            frontier = split.prefix(inputs)  # tuple of cached deterministic values
            for _ in range(n_samples):
                values = [v.clone() if c else v
                          for v, c in zip(frontier, split.clone_mask, strict=True)]
                yield output_fn(split.suffix(*values))

    @staticmethod
    def _can_batch(split: _Split, frontier: tuple[Any, ...], batch: int) -> bool:
        """Every input-dependent frontier value must be a tensor with the batch on dim 0."""
        ok = any(split.batch_mask) and all(
            isinstance(v, Tensor) and v.ndim >= 1 and v.shape[0] == batch
            for v, dep in zip(frontier, split.batch_mask, strict=True)
            if dep
        )
        if not ok:
            warnings.warn(
                "MCDropoutSampler: the cached values are not all batch-first tensors, so the "
                "T samples cannot be batched; running them one after another",
                RuntimeWarning,
                stacklevel=3,
            )
        return ok

    @staticmethod
    def _run_batched(
        inputs: Tensor,
        n_samples: int,
        output_fn: Callable[[Any], Tensor],
        fn: Callable[..., Any],
        values: Any,
        batch_mask: list[bool],
    ) -> Tensor:
        """Tile batch-first values T times ([T*B, ...], sample-major) and run `fn` once."""
        batch = inputs.shape[0]
        tiled = [
            v.repeat(n_samples, *([1] * (v.ndim - 1))) if dep else v  # [T*B, ...]
            for v, dep in zip(values, batch_mask, strict=True)
        ]
        out = output_fn(fn(*tiled))
        if not isinstance(out, Tensor) or out.ndim < 1 or out.shape[0] != n_samples * batch:
            raise RuntimeError(
                "batch_samples=True needs a tensor output with T*B rows; use output_fn to pick "
                "a batch-first tensor out of the model output"
            )
        return out.reshape(n_samples, batch, *out.shape[1:])  # [T, B, *out]


def _identity(x: Any) -> Any:
    return x


def _stack_passes(n_samples: int, passes: Iterator[Any]) -> Tensor:
    """Collect T passes into a preallocated [T, *out] tensor (no list of T outputs)."""
    first = next(passes)
    if not isinstance(first, Tensor):
        raise TypeError(
            f"the model output is a {type(first).__name__}, not a tensor; pass output_fn to turn "
            "it into one (e.g. output_fn=lambda out: out['out'].softmax(1))"
        )
    result = first.new_empty((n_samples, *first.shape))  # [T, B, *out]
    result[0] = first
    for t, value in enumerate(passes, start=1):
        result[t] = value
    return result


def mc_dropout_predict(
    model: nn.Module,
    inputs: Tensor,
    n_samples: int = 20,
    output_fn: Callable[[Any], Tensor] | None = None,
    batch_samples: bool = False,
) -> Tensor:
    """One-off MC-dropout sampling: inputs [B, ...] -> [T, B, *out].

    Traces the model on every call; build an MCDropoutSampler once to score many batches.
    """
    return MCDropoutSampler(model).sample(inputs, n_samples, output_fn, batch_samples)
