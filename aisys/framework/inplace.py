"""In-place updates with PyTorch's rules: storage versions, the saved-tensor check, and history rebase.

Autograd keeps references to the values an op's VJP will read (its *saved* values, ``OpDef.saved``). If one
of them is overwritten before ``backward()``, the gradient would silently be computed from the new values
(``y = x * x; x.copy_(10)`` would give dy/dx = 20). So, as in PyTorch, every *storage* — the numpy array
that owns the memory, shared by views, ``detach()`` and ``.data`` — carries a version that every in-place
write bumps. A recorded op remembers the global write count (``_Mode.epoch``) when it ran, and
``backward()`` refuses a saved value whose storage was written since, naming the op, the value, both
versions and the line of the write.

The in-place ops themselves (``x += y``, ``add_``, ``copy_``, ``zero_``, ``x[i] = v`` ...) follow PyTorch:

- a leaf that requires grad cannot change in place while grad mode is on (it is the point autograd
  differentiates at); inside ``aisys.no_grad()`` it can — that is how optimizers update weights;
- with grad mode on, an in-place op on a tensor with history (or with an operand that requires grad) is
  recorded: the tensor takes the op as its new history (*rebase*), and the ops recorded before it keep
  reading the old history through a *shadow* tensor that shares the storage (so their saved values are
  version-checked like any other);
- the result is computed in the promoted dtype and written back in the tensor's own dtype, which must be
  able to hold it (no float result into an integer tensor), and with the tensor's own shape (the other
  operand may broadcast to it, never the other way round).

Writes that bypass these methods (``t.numpy()[...] = v``) are invisible, as in PyTorch.
"""
from __future__ import annotations

import functools
import weakref

import numpy as np

from .errors import ShapeError, user_location
from .tensor import Tensor, _Mode, _inplace as _tensor_inplace, no_grad

_KEEP = 32                   # recent writes remembered per storage (their epochs and source lines)


class _Storage:
    """The version of one storage and its recent writes [(epoch, file:line or label), ...]."""
    __slots__ = ("ref", "version", "writes")


_STORAGES: dict[int, _Storage] = {}


def owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    b = a.base
    while isinstance(b, np.ndarray):
        a, b = b, b.base
    return a


def _drop(key: int, ref) -> None:
    s = _STORAGES.get(key)
    if s is not None and s.ref is ref:
        del _STORAGES[key]


def _storage(a: np.ndarray) -> _Storage | None:
    o = a if a.base is None else owner(a)
    s = _STORAGES.get(id(o))
    return s if s is not None and s.ref() is o else None


def _new_storage(o: np.ndarray) -> _Storage:
    key = id(o)
    s = _Storage()
    s.ref = weakref.ref(o, functools.partial(_drop, key))
    s.version = 0
    s.writes = []
    _STORAGES[key] = s
    return s


def bump(a: np.ndarray, where: str | None = None) -> None:
    """Record one in-place write into ``a``'s storage (``where``: the user's line, or who wrote). Runs once per
    parameter per optimizer step, so it is kept to a few dict and attribute operations."""
    o = a if a.base is None else owner(a)
    s = _STORAGES.get(id(o))
    if s is None or s.ref() is not o:
        s = _new_storage(o)
    s.version += 1
    e = _Mode.epoch = _Mode.epoch + 1
    w = s.writes
    w.append((e, where))
    if len(w) > _KEEP:
        del w[0]


def version(a: np.ndarray) -> int:
    """How many in-place writes ``a``'s storage has had (``Tensor._version``)."""
    s = _storage(a)
    return 0 if s is None else s.version


# ---- the check backward() makes -------------------------------------------------------------------
def _saved_values(t: Tensor):
    """(description, tensor) of each value ``t``'s op VJP will read. An entry ``(v, j, ...)`` of ``OpDef.saved``
    is read only for the gradient of inputs j, ...: saved only when one of them requires grad (``x * 3``
    needs x only if 3 needed a gradient)."""
    op, inputs, _ = t._ctx
    entries = tuple(range(len(inputs))) + ("out",) if op.saved is None else op.saved
    for e in entries:
        if type(e) is tuple:
            if not any(inputs[j].requires_grad for j in e[1:]):
                continue
            e = e[0]
        yield ("its output", t) if e == "out" else (f"input {e}", inputs[e])


def check_saved(t: Tensor) -> None:
    """Raise if a value the VJP of ``t``'s op reads was written in place after the op ran. Called by backward
    only when some write happened since (``t._epoch < _Mode.epoch``), so it costs nothing otherwise."""
    since = t._epoch
    for what, x in _saved_values(t):
        s = _storage(x._data)
        if s is None or not s.writes or s.writes[-1][0] <= since:
            continue
        later = [(e, w) for e, w in s.writes if e > since]
        then = s.version - len(later)
        then_txt = str(then) if len(later) < len(s.writes) or then == 0 else f"≤ {then}"
        where = later[0][1] or "an untracked place"
        op = t._ctx[0]
        raise RuntimeError(
            f"one of the variables needed for gradient computation has been modified by an in-place operation: "
            f"{op.name} saved {x.dtype.short}{list(x.shape)} ({what}) at version {then_txt}, now version "
            f"{s.version} (written at {where}). Do the in-place update after backward(), or compute on a "
            f"copy (x.clone()) instead")


def resolve_rebased(inputs: tuple, epoch: int) -> tuple:
    """The tensors an op recorded at ``epoch`` really read: an input rebased by a later in-place op stands
    for its history at the time, kept by the shadow made when it was rebased."""
    out = None
    for k, x in enumerate(inputs):
        prior = getattr(x, "_prior", None)
        if not prior:
            continue
        for e, shadow in prior:
            if epoch < e:
                out = list(inputs) if out is None else out
                out[k] = shadow
                break
    return inputs if out is None else tuple(out)


# ---- in-place updates -----------------------------------------------------------------------------------
def check_leaf(t: Tensor, name: str) -> None:
    if _Mode.grad_enabled and t.requires_grad and t._ctx is None:
        raise RuntimeError(f"{name}: a leaf tensor that requires grad ({t.dtype.short}{list(t.shape)}) cannot be "
                           f"changed in place while grad mode is on: autograd differentiates at its current value. "
                           f"Update it inside `with aisys.no_grad():` (as optimizers do), or use an out-of-place op "
                           f"(y = x + 1)")


def _check_writable(t: Tensor, name: str) -> None:
    if not t._data.flags.writeable:
        raise RuntimeError(f"{name}: this tensor is a read-only view (a broadcast result or a shared constant) of "
                           f"shape {tuple(t.shape)}; .clone() it first")


def _check_result(t: Tensor, new: Tensor, name: str) -> None:
    if new._data.shape != t._data.shape:
        raise ShapeError(name, f"the result has shape {tuple(new.shape)} but the tensor updated in place has "
                         f"shape {tuple(t.shape)}", shapes=(t.shape, new.shape),
                         rule="an in-place op keeps the tensor's shape: the other operand may broadcast to it, "
                              "not the other way round")
    src, dst = new.dtype, t.dtype
    if (src.is_floating and not dst.is_floating) or (dst.name == "bool" and src.name != "bool"):
        raise TypeError(f"{name}: the result is {src.name}, which cannot be stored in place into a {dst.name} "
                        f"tensor (PyTorch's rule: no float into an integer tensor, nothing but bool into bool); "
                        f"use an out-of-place op, or convert first (x = x.float())")


def _notify(t: Tensor, new: Tensor) -> None:
    for ob in list(_Mode.observers):
        hook = getattr(ob, "on_inplace", None)
        if hook is not None:
            hook(t, new)


def _shadow(t: Tensor, data: np.ndarray) -> Tensor:
    """A tensor standing for ``t``'s current value and history, holding ``data``."""
    s = Tensor._wrap(data)
    s.requires_grad = t.requires_grad
    s._ctx = t._ctx
    if t._ctx is not None:
        s._epoch = t._epoch
    s._tangent = t._tangent
    s._trace = t._trace
    return s


def _run(name: str, t: Tensor, compute, *args) -> Tensor:
    try:
        return compute(*args)
    except ShapeError as e:
        raise ShapeError(name, f"updating a tensor of shape {tuple(t.shape)} in place: {e}", shapes=e.shapes,
                         location=e.location) from None


def update(t: Tensor, name: str, compute, *operands, reads_self: bool = True) -> Tensor:
    """``t ← compute(t, *operands)`` in place, with PyTorch's rules (see the module docstring).

    ``compute`` builds the new value out of ops (so autodiff and tracers see it); ``reads_self``: whether
    its backward needs the old value of ``t`` (then the recorded op reads a copy of it)."""
    check_leaf(t, name)
    _check_writable(t, name)
    where = user_location()
    record = _Mode.grad_enabled and (t.requires_grad or any(isinstance(o, Tensor) and o.requires_grad
                                                            for o in operands))
    if not record:
        new = _run(name, t, compute, t, *operands)
        _check_result(t, new, name)
        if _Mode.observers:
            from .ops import cast
            _notify(t, cast(new, t.dtype))
        np.copyto(t._data, new._data, casting="unsafe")
        bump(t._data, where)
        return t
    old = _shadow(t, t._data)                                   # what earlier ops keep reading
    src = _shadow(t, t._data.copy()) if reads_self else old
    base = owner(t._data)
    ops = []
    for o in operands:
        if o is t:
            o = src
        elif isinstance(o, Tensor) and owner(o._data) is base:  # a view of t: keep the values it had
            o = _shadow(o, o._data.copy())
        ops.append(o)
    new = _run(name, t, compute, src, *ops)
    _check_result(t, new, name)
    from .ops import cast
    new = cast(new, t.dtype)
    if new._ctx is None or new is src or any(new is o for o in ops):
        from .tensor import apply
        new = apply("clone", new)                               # t needs a history node of its own
    _notify(t, new)
    np.copyto(t._data, new._data, casting="unsafe")
    bump(t._data, where)
    t._ctx = new._ctx
    t._epoch = _Mode.epoch
    t.requires_grad = new.requires_grad
    t._tangent = new._tangent
    t._prior = (getattr(t, "_prior", None) or ()) + ((_Mode.epoch, old),)
    _Mode.rebases += 1
    return t


def write(t: Tensor, value: np.ndarray, name: str, where: str | None = None) -> Tensor:
    """Store ``value`` into ``t`` in place without recording (library state: optimizers, init, loading)."""
    np.copyto(t._data, value, casting="unsafe")
    bump(t._data, where or name)
    return t


def fill_random(t: Tensor, name: str, draw) -> Tensor:
    """``t``'s values replaced by ``draw(shape)`` (uniform_, normal_ ...): never recorded, as in PyTorch."""
    check_leaf(t, name)
    _check_writable(t, name)
    with no_grad():
        write(t, draw(t._data.shape), name, user_location())
    return t


__all__ = ["bump", "version", "owner", "check_saved", "resolve_rebased", "check_leaf", "update", "write",
           "fill_random"]


vars(_tensor_inplace).update({k: v for k, v in globals().items()      # what Tensor's in-place methods call
                             if not k.startswith("_") and getattr(v, "__module__", None) == __name__})
