"""Pruning (剪枝): setting weights to zero, one by one or a whole channel at a time.

  unstructured   the smallest-magnitude weights, to an *exact* sparsity: per layer (each layer loses the
                 same share) or global (one ranking over every layer). The layer keeps its shape; zeros are
                 still multiplied unless the hardware skips them — a dense systolic array does not.
  structured     whole output channels (filters) with the smallest L1 norm (Li et al., "Pruning Filters for
                 Efficient ConvNets", ICLR 2017) are *removed*: the layer gets fewer channels and the layer that
                 reads them loses the matching inputs, so the model is really smaller (smaller GEMMs).

``prune`` changes the model in place and returns a :class:`Pruning` record (masks, sparsity per layer); while
fine-tuning, ``pruning.enforce(optimizer)`` keeps pruned weights at zero after every step.
``iterative_prune`` alternates pruning and fine-tuning up a sparsity schedule (Han et al., NeurIPS 2015);
``sensitivity_scan`` prunes (or quantizes) one layer at a time to show which layers can take it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..nn.layers import Conv2d, Linear
from ..nn.module import Module, Parameter
from ..tensor import Tensor, no_grad
from .ptq import _set_submodule

__all__ = ["magnitude_mask", "channel_l1_norms", "prune", "Pruning", "remove_channels", "iterative_prune",
           "sensitivity_scan", "Sensitivity", "sparsity_report", "prunable_layers"]

MATRIX_LAYERS = (Linear, Conv2d)


def _count(n: int, sparsity: float, what: str) -> int:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise ValueError(f"{what}: sparsity={sparsity!r} must be a number in [0, 1) (0.9 = remove 90%)")
    return int(round(sparsity * n))


def magnitude_mask(weight, sparsity: float, dim: int | None = None) -> np.ndarray:
    """Boolean mask of the weights to *keep* so that exactly round(sparsity·n) are pruned.

    ``dim=None``: the smallest |w| elements (ties broken by position, first pruned first). ``dim=d``: whole
    slices along ``d`` (output channels for d=0) with the smallest L1 norm, the mask broadcast over the rest.
    """
    w = np.asarray(weight._data if isinstance(weight, Tensor) else weight, dtype=np.float64)
    if w.size == 0:
        raise ValueError("magnitude_mask: the weight is empty")
    if dim is None:
        k = _count(w.size, sparsity, "magnitude_mask")
        order = np.argsort(np.abs(w).reshape(-1), kind="stable")
        keep = np.ones(w.size, bool)
        keep[order[:k]] = False
        return keep.reshape(w.shape)
    norms = channel_l1_norms(w, dim)
    k = _count(norms.size, sparsity, "magnitude_mask")
    if k >= norms.size:
        raise ValueError(f"magnitude_mask: pruning {k} of {norms.size} channels leaves none")
    order = np.argsort(norms, kind="stable")
    keep = np.ones(norms.size, bool)
    keep[order[:k]] = False
    shape = [1] * w.ndim
    shape[dim % w.ndim] = -1
    return np.broadcast_to(keep.reshape(shape), w.shape).copy()


def channel_l1_norms(weight, dim: int = 0) -> np.ndarray:
    """Σ|w| over every axis but ``dim``: one L1 norm per output channel (dim 0) of a Linear/Conv2d weight."""
    w = np.abs(np.asarray(weight._data if isinstance(weight, Tensor) else weight, dtype=np.float64))
    d = dim % w.ndim
    return w.sum(axis=tuple(a for a in range(w.ndim) if a != d))


def prunable_layers(model: Module, layers=None) -> list:
    """[(name, module)] of the Linear/Conv2d layers to prune: all of them, those named in ``layers``, or those
    of the types in ``layers`` (e.g. ``nn.Conv2d``)."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, MATRIX_LAYERS)]
    if layers is None:
        return found
    if isinstance(layers, type) or (isinstance(layers, tuple) and all(isinstance(t, type) for t in layers)):
        return [(n, m) for n, m in found if isinstance(m, layers)]
    names = [layers] if isinstance(layers, str) else list(layers)
    known = dict(found)
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"prune: no Linear/Conv2d layer named {missing}; the model has {list(known)}")
    return [(n, known[n]) for n in names]


@dataclass
class Pruning:
    """What ``prune`` did: per layer the mask of kept weights (unstructured) or kept channels (structured)."""
    model: Module
    masks: dict = field(default_factory=dict)            # layer name -> bool mask of the weight's shape
    kept_channels: dict = field(default_factory=dict)    # structured: layer name -> indices of kept channels
    structured: bool = False
    scope: str = "layer"
    removed_from: int = 0                                # structured: weights of the rewired layers before …
    kept: int = 0                                        # … and after
    original: dict = field(default_factory=dict)         # structured: layer name -> its weights before pruning

    def apply(self) -> None:
        """Zero every pruned weight again (after an optimizer step moved them)."""
        mods = dict(self.model.named_modules())
        with no_grad():
            for name, mask in self.masks.items():
                w = mods[name].weight._data
                w *= mask

    def enforce(self, optimizer):
        """Make ``optimizer.step()`` re-apply the masks after every update; returns the optimizer."""
        step = optimizer.step

        def masked_step(*args, **kwargs):
            out = step(*args, **kwargs)
            self.apply()
            return out
        optimizer.step = masked_step
        return optimizer

    @property
    def sparsity(self) -> float:
        """Share of the pruned layers' weights that are zero (unstructured) or removed (structured)."""
        if self.structured:
            return 1.0 - self.kept / max(1, self.removed_from)
        total = sum(m.size for m in self.masks.values())
        return float(sum((~m).sum() for m in self.masks.values()) / max(total, 1))

    def summary(self) -> str:
        head = (f"structured pruning: {len(self.kept_channels)} layers lost channels, weights "
                f"{self.removed_from:,} -> {self.kept:,} ({100 * self.sparsity:.1f}% removed)"
                if self.structured else
                f"unstructured {self.scope} pruning: {100 * self.sparsity:.2f}% of {sum(m.size for m in self.masks.values()):,} weights are zero")
        lines = [head]
        mods = dict(self.model.named_modules())
        for name, mask in self.masks.items():
            w = mods[name].weight
            lines.append(f"  {name:<12} {str(tuple(w.shape)):<18} {100 * (1 - mask.mean()):6.2f}% pruned")
        return "\n".join(lines)


def sparsity_report(model: Module) -> dict:
    """Per Linear/Conv2d layer: the fraction of weights that are exactly zero."""
    return {n: float((m.weight._data == 0).mean()) for n, m in model.named_modules() if isinstance(m, MATRIX_LAYERS)}


def prune(model: Module, sparsity: float = 0.5, structured: bool = False, scope: str = "layer", layers=None,
          example: Tensor | None = None) -> Pruning:
    """Prune ``model`` in place (see the module docstring) and return the :class:`Pruning` record.

    Unstructured: ``scope='layer'`` prunes each layer to ``sparsity``, ``scope='global'`` ranks all weights of
    the chosen layers together; either way exactly round(sparsity·n) weights become zero. Structured:
    removes round(sparsity·C) output channels of each chosen layer (default: every Linear/Conv2d except the
    last one run, whose outputs are the model's) and rewires the next layer; it needs ``example`` (an input
    batch) to see which layer reads which, and checks the smaller model computes what the masked one does.
    """
    if scope not in ("layer", "global"):
        raise ValueError(f"prune: scope={scope!r} must be 'layer' or 'global'")
    if structured:
        return remove_channels(model, sparsity, layers=layers, example=example)
    chosen = prunable_layers(model, layers)
    if not chosen:
        raise ValueError("prune: the model has no Linear/Conv2d layer to prune")
    _count(1, sparsity, "prune")
    masks = {}
    if scope == "layer":
        for name, m in chosen:
            masks[name] = magnitude_mask(m.weight, sparsity)
    else:
        flat = np.concatenate([np.abs(m.weight._data.astype(np.float64)).reshape(-1) for _, m in chosen])
        keep = magnitude_mask(flat, sparsity)
        start = 0
        for name, m in chosen:
            n = m.weight._data.size
            masks[name] = keep[start:start + n].reshape(m.weight.shape)
            start += n
    result = Pruning(model, masks, structured=False, scope=scope)
    result.apply()
    return result


# ---------------------------------------------------------------------------------------------------
# structured: remove channels
# ---------------------------------------------------------------------------------------------------

class _Order:
    """The order a forward pass runs the matrix layers in, with each one's output shape (forward hooks)."""

    def __init__(self, model: Module, example: Tensor):
        self.calls: list = []
        handles = []
        for name, m in model.named_modules():
            if isinstance(m, MATRIX_LAYERS):
                handles.append(m.register_forward_hook(self._hook(name)))
        was = model.training
        try:
            model.eval()
            with no_grad():
                model(example)
        finally:
            for h in handles:
                h.remove()
            model.train(was)

    def _hook(self, name):
        def hook(module, args, out):
            self.calls.append((name, module, tuple(args[0].shape), tuple(out.shape)))
        return hook


def _consumer_columns(producer: Module, consumer: Module, keep: np.ndarray, consumer_in: tuple) -> np.ndarray:
    """Indices of the consumer's input features/channels that the kept producer channels feed."""
    C = producer.weight.shape[0]
    if isinstance(consumer, Conv2d):
        if consumer.in_channels != C or consumer.groups != 1:
            raise ValueError(f"the next layer {consumer!r} does not read the {C} channels one by one")
        return keep
    n_in = consumer.in_features
    if n_in % C:
        raise ValueError(f"the next layer reads {n_in} features, not a multiple of the {C} channels")
    per = n_in // C                        # NCHW flatten: channel c owns features [c·HW, (c+1)·HW)
    return (keep[:, None] * per + np.arange(per)[None, :]).reshape(-1)


def _zero_channels(model: Module, plan: dict) -> None:
    mods = dict(model.named_modules())
    with no_grad():
        for name, (keep, *_rest) in plan.items():
            m = mods[name]
            drop = np.setdiff1d(np.arange(m.weight.shape[0]), keep)
            m.weight._data[drop] = 0
            if m.bias is not None:
                m.bias._data[drop] = 0


def _smaller(layer: Module, out_keep: np.ndarray | None, in_keep: np.ndarray | None) -> Module:
    w = layer.weight._data
    b = layer.bias._data if layer.bias is not None else None
    if out_keep is not None:
        w, b = w[out_keep], (b[out_keep] if b is not None else None)
    if in_keep is not None:
        w = w[:, in_keep]
    if isinstance(layer, Linear):
        new = Linear(w.shape[1], w.shape[0], bias=b is not None)
    else:
        if layer.groups != 1:
            raise ValueError(f"structured pruning of grouped convolutions is not supported ({layer!r})")
        new = Conv2d(w.shape[1], w.shape[0], layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                     bias=b is not None)
    new.weight = Parameter(np.ascontiguousarray(w))
    if b is not None:
        new.bias = Parameter(np.ascontiguousarray(b))
    new.train(layer.training)
    return new


def remove_channels(model: Module, sparsity: float = 0.5, layers=None, example: Tensor | None = None,
                    keep: dict | None = None) -> Pruning:
    """Structured L1 pruning: drop each chosen layer's weakest output channels and the next layer's matching
    inputs (see ``prune``). ``keep``: instead, {layer name: indices of the channels to keep} (your own choice,
    e.g. from a mask). The model is changed only if the smaller one reproduces the masked one."""
    if example is None:
        raise ValueError("prune(structured=True) needs example=<an input batch>: removing a layer's channels "
                         "also removes inputs of the layer that reads them, found by running the model once")
    order = _Order(model, example).calls
    names = [c[0] for c in order]
    if len(set(names)) != len(names):
        raise ValueError("prune(structured=True): a layer runs twice in one forward pass; cannot rewire it")
    if keep is not None:
        if not isinstance(keep, dict) or not keep:
            raise ValueError("remove_channels: keep must be a non-empty {layer name: channel indices} dict")
        layers = list(keep)
    chosen = [n for n, _ in prunable_layers(model, layers)] if layers is not None else names[:-1]
    if names and names[-1] in chosen:
        raise ValueError(f"prune(structured=True): {names[-1]!r} is the last layer; its outputs are the model's "
                         f"(e.g. the classes), so its channels cannot be removed")
    if keep is None:
        _count(1, sparsity, "prune")
    plan = {}
    for name in chosen:
        k = names.index(name)
        producer, consumer, cons_in = order[k][1], order[k + 1][1], order[k + 1][2]
        if keep is not None:
            kept = np.unique(np.asarray(keep[name], dtype=np.int64).reshape(-1))
            C = producer.weight.shape[0]
            if kept.size == 0 or kept.min() < 0 or kept.max() >= C:
                raise ValueError(f"remove_channels: keep[{name!r}] must name 1..{C} channels in 0..{C - 1}, got "
                                 f"{np.asarray(keep[name]).tolist()[:8]}")
        else:
            kept = np.flatnonzero(magnitude_mask(producer.weight, sparsity, dim=0)
                                  .reshape(producer.weight.shape[0], -1)[:, 0])
        try:
            cols = _consumer_columns(producer, consumer, kept, cons_in)
        except ValueError as exc:
            raise ValueError(f"prune(structured=True): cannot remove channels of {name!r}: {exc}") from None
        plan[name] = (kept, names[k + 1], cols)
    # the reference: the same model with the pruned channels zeroed
    originals = {n: dict(model.named_modules())[n].weight._data.copy() for n in plan}
    reference = copy.deepcopy(model)
    _zero_channels(reference, plan)
    smaller = copy.deepcopy(model)
    mods = dict(smaller.named_modules())
    new_in = {}
    for name, (keep, nxt, cols) in plan.items():
        new_in[nxt] = cols
    for name in set(plan) | set(new_in):
        out_keep = plan[name][0] if name in plan else None
        _set_submodule(smaller, name, _smaller(mods[name], out_keep, new_in.get(name)))
    with no_grad():
        was_r, was_s = reference.training, smaller.training
        reference.eval(), smaller.eval()
        want, got = reference(example)._data, smaller(example)._data
        reference.train(was_r), smaller.train(was_s)
    if want.shape != got.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise ValueError("prune(structured=True): the model without the channels does not compute what the model "
                         "with them zeroed computes (an op between the layers maps 0 to something else, e.g. a "
                         "sigmoid, or a layer reads channels in another order); the model was not changed")
    orig = sum(dict(model.named_modules())[n].weight._data.size for n in set(plan) | set(new_in))
    # commit: move the smaller layers into the caller's model
    new_mods = dict(smaller.named_modules())
    for name in set(plan) | set(new_in):
        _set_submodule(model, name, new_mods[name])
    kept = sum(new_mods[n].weight._data.size for n in set(plan) | set(new_in))
    return Pruning(model, {}, {n: p[0] for n, p in plan.items()}, structured=True, removed_from=orig, kept=kept,
                   original=originals)


# ---------------------------------------------------------------------------------------------------
# schedules and sensitivity
# ---------------------------------------------------------------------------------------------------

def iterative_prune(model: Module, schedule, fine_tune, evaluate=None, scope: str = "layer", layers=None) -> list:
    """Prune → fine-tune, step by step up ``schedule`` (e.g. (0.5, 0.75, 0.9)) of unstructured sparsities.

    ``fine_tune(model, pruning)`` trains a little (use ``pruning.enforce(optimizer)`` so pruned weights stay
    zero); ``evaluate(model) -> float`` is called after each step. Returns [(sparsity, score or None)].
    Weights pruned at one step stay pruned: each step's magnitudes rank the surviving weights only."""
    steps = list(schedule)
    if not steps or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"iterative_prune: schedule {steps} must be non-empty and increasing")
    history, previous = [], None
    for target in steps:
        pruning = prune(model, target, scope=scope, layers=layers)
        if previous is not None:                       # an earlier zero stays zero even if it ranks high now
            for name in pruning.masks:
                pruning.masks[name] &= previous.masks[name]
            pruning.apply()
        fine_tune(model, pruning)
        pruning.apply()
        previous = pruning
        history.append((target, evaluate(model) if evaluate is not None else None))
    return history


@dataclass
class Sensitivity:
    """Per layer, the model's score with only that layer pruned (or quantized) at each setting."""
    kind: str                      # "sparsity" or "bits"
    settings: list
    layers: list
    scores: dict                   # layer -> [score per setting]
    baseline: float

    def summary(self) -> str:
        unit = (lambda v: f"{100 * v:.0f}%") if self.kind == "sparsity" else (lambda v: f"{v} bit")
        lines = [f"sensitivity scan ({self.kind}), baseline {self.baseline:.4f}",
                 "  " + f"{'layer':<12}" + "".join(f"{unit(v):>9}" for v in self.settings)]
        for name in self.layers:
            lines.append("  " + f"{name:<12}" + "".join(f"{s:9.4f}" for s in self.scores[name]))
        return "\n".join(lines)

    def most_sensitive(self) -> str:
        return min(self.layers, key=lambda n: min(self.scores[n]))


def sensitivity_scan(model: Module, evaluate, sparsities=(0.5, 0.7, 0.9), bits=None, layers=None) -> Sensitivity:
    """Prune (``sparsities``) or fake-quantize to ``bits`` (symmetric, per channel) one layer at a time and
    record ``evaluate(model)``; every weight is restored afterwards, whatever happens."""
    chosen = prunable_layers(model, layers)
    kind = "bits" if bits is not None else "sparsity"
    settings = list(bits if bits is not None else sparsities)
    for b in settings if kind == "bits" else ():
        if not isinstance(b, int) or not 2 <= b <= 8:
            raise ValueError(f"sensitivity_scan: bits={b!r} must be an int from 2 to 8")
    baseline = float(evaluate(model))
    scores = {}
    for name, m in chosen:
        saved = m.weight._data.copy()
        row = []
        try:
            for v in settings:
                with no_grad():
                    if kind == "sparsity":
                        m.weight._data[...] = saved * magnitude_mask(saved, v)
                    else:
                        amax = np.abs(saved).reshape(saved.shape[0], -1).max(axis=1)
                        qmax = 2 ** (v - 1) - 1
                        s = np.where(amax > 0, amax / qmax, 1.0)
                        q = np.clip(np.round(saved / s.reshape(-1, *[1] * (saved.ndim - 1))), -qmax - 1, qmax)
                        m.weight._data[...] = (q * s.reshape(-1, *[1] * (saved.ndim - 1))).astype(saved.dtype)
                row.append(float(evaluate(model)))
                m.weight._data[...] = saved
        finally:
            m.weight._data[...] = saved
        scores[name] = row
    return Sensitivity(kind, settings, [n for n, _ in chosen], scores, baseline)
