"""Module and Parameter: how a model owns its weights, names them, and saves them.

A ``Module`` registers every ``Parameter``, buffer and sub-module assigned to it as an attribute, so
``named_parameters()`` can walk the tree and give each weight a dotted name (``"fc1.weight"``). The
same names key ``state_dict()``, the tracer's graph inputs and the optimizer's state.

State dicts are saved as ``.npz`` (one numpy array per name) and loaded with ``allow_pickle=False``:
a weights file can never run code when it is opened, unlike pickle-based checkpoints.
"""
from __future__ import annotations

import os
from collections import OrderedDict, namedtuple
from typing import Iterator

import numpy as np

from .. import dtypes as _dt
from ..tensor import Tensor, no_grad


class Parameter(Tensor):
    """A Tensor that a Module registers as a trainable weight (``requires_grad=True`` by default).

    Like ``torch.nn.Parameter``, wrapping an existing Tensor shares its memory; a numpy array or a list is
    copied (the parameter owns its values, so an optimizer step never writes into the caller's array).
    Python numbers and lists become float32. Ops on a Parameter return plain Tensors.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.zeros((0,), np.float32)
        if isinstance(data, Tensor):
            data = data._data
        elif isinstance(data, np.ndarray):
            data = data.copy()
        else:
            data = np.asarray(data, dtype=np.float32 if not isinstance(data, (bool, np.bool_)) else None)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: dict, key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model (mirrors ``torch.nn.Module``).

    Subclasses call ``super().__init__()`` first, assign parameters/sub-modules as attributes and
    define ``forward``. Calling the module runs ``forward`` and then any forward hooks.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- attribute registration ---------------------------------------------------------------
    def _require_init(self, what: str, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} {name!r} before Module.__init__() ran; call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if isinstance(value, Parameter):
            self._require_init("parameter", name)
            self._forget(name)
            d["_parameters"][name] = value
        elif isinstance(value, Module):
            self._require_init("sub-module", name)
            self._forget(name)
            d["_modules"][name] = value
        elif "_parameters" in d and name in d["_parameters"]:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                                f"{type(self).__name__}; wrap it: aisys.nn.Parameter(value) (or assign None)")
            d["_parameters"][name] = None
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to sub-module {name!r} of "
                                f"{type(self).__name__}; assign a Module (or None)")
            d["_modules"][name] = None
        elif "_buffers" in d and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r} of "
                                f"{type(self).__name__}; a buffer holds a Tensor (or None)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        d = self.__dict__
        d.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            d[store].pop(name, None)
        d["_non_persistent"].discard(name)

    def __getattr__(self, name: str):
        d = self.__dict__
        params = d.get("_parameters")            # every layer's forward reads its weights through here
        if params is not None:
            if name in params:
                return params[name]
            if name in d["_buffers"]:
                return d["_buffers"][name]
            if name in d["_modules"]:
                return d["_modules"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if name in d.get(store, ()):
                del d[store][name]
                d["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected an aisys.nn.Parameter or None, got "
                            f"{type(param).__name__}")
        self._require_init("parameter", name)
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """State that is not trained but belongs to the model (BatchNorm's running mean): it is saved in
        ``state_dict`` (unless ``persistent=False``) and the tracer sees it as a named input."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}): expected a Tensor or None, got {type(tensor).__name__}")
        self._require_init("buffer", name)
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): {type(module).__name__} is not a Module")
        self._require_init("sub-module", name)
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # ---- calling ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                res = hook(self, args, out)
                if res is not None:
                    out = res
        return out

    def register_forward_hook(self, hook) -> RemovableHandle:
        """``hook(module, inputs, output)`` runs after every forward; returning a value replaces the
        output. Handy for inspecting activations layer by layer."""
        key = id(hook) ^ len(self._forward_hooks)
        while key in self._forward_hooks:
            key += 1
        self._forward_hooks[key] = hook
        return RemovableHandle(self._forward_hooks, key)

    # ---- walking the tree ---------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, t in getattr(m, store).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mp}.{name}" if mp else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs; a weight shared by two layers appears once (the first name)."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total element count of the parameters (aisys extra; torch users write a sum over numel)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn) -> "Module":
        """Call ``fn(m)`` on every sub-module (children first) and on self, as torch's Module.apply."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # ---- devices and dtypes ---------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Module":
        """``to(device)`` (the CPU: a no-op; CUDA raises, see aisys.device), ``to(dtype)`` (every floating-point
        parameter, buffer and gradient converted in place), or both, as torch's Module.to. Returns self."""
        from ..device import as_device
        from ..tensor import parse_to
        dtype, dev = parse_to(args, kwargs)
        if dev is not None:
            as_device(dev)
        if dtype is not None:
            if not dtype.is_floating:
                raise TypeError(f"Module.to: only floating-point dtypes convert a model, got {dtype.name}")
            for t in list(self.parameters()) + list(self.buffers()):
                if t.dtype.is_floating and t.dtype is not dtype:
                    t._data = t._data.astype(dtype.np)
                    if t.grad is not None:
                        t.grad = Tensor._wrap(t.grad._data.astype(dtype.np))
        return self

    def cpu(self) -> "Module":
        return self

    def cuda(self, *args, **kwargs):
        from ..device import NO_ACCELERATOR
        raise RuntimeError(f"{type(self).__name__}.cuda(): " + NO_ACCELERATOR.format(what="CUDA"))

    def float(self) -> "Module":
        return self.to(_dt.float32)

    def double(self) -> "Module":
        return self.to(_dt.float64)

    def half(self) -> "Module":
        return self.to(_dt.float16)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        from ..optim import zero_grads
        zero_grads(self.parameters(), set_to_none)

    # ---- state dict ---------------------------------------------------------------------------
    def state_dict(self, prefix: str = "") -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by dotted name, as detached tensors sharing memory."""
        out = OrderedDict()
        for mp, m in self.named_modules(prefix=prefix.rstrip(".")):
            for store in ("_parameters", "_buffers"):
                for name, t in getattr(m, store).items():
                    if t is None or (store == "_buffers" and name in m._non_persistent):
                        continue
                    out[f"{mp}.{name}" if mp else name] = t.detach()
        return out

    def _state_targets(self) -> "OrderedDict[str, Tensor]":
        out = OrderedDict()
        for mp, m in self.named_modules():
            for store in ("_parameters", "_buffers"):
                for name, t in getattr(m, store).items():
                    if t is not None and not (store == "_buffers" and name in m._non_persistent):
                        out[f"{mp}.{name}" if mp else name] = t
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into this module's parameters and buffers (numpy arrays or Tensors).

        Everything is checked before anything is written, so a failed load leaves the module unchanged.
        With ``strict=False`` missing and unexpected keys are allowed and returned; shape mismatches
        always fail. Returns ``(missing_keys, unexpected_keys)`` like torch.
        """
        targets = self._state_targets()
        given = OrderedDict((k, v) for k, v in state_dict.items())
        missing = [k for k in targets if k not in given]
        unexpected = [k for k in given if k not in targets]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        arrays = {}
        for k, t in targets.items():
            if k not in given:
                continue
            v = given[k]
            arr = v._data if isinstance(v, Tensor) else np.asarray(v)
            if tuple(arr.shape) != tuple(t.shape):
                problems.append(f"shape mismatch for {k}: the file has {tuple(arr.shape)}, "
                                f"the model has {tuple(t.shape)}")
                continue
            if arr.dtype.kind not in "biuf" and arr.dtype != t._data.dtype and arr.dtype.kind != "V":
                problems.append(f"{k}: cannot load values of numpy dtype {arr.dtype}")
                continue
            arrays[k] = arr
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__} failed (nothing was changed): "
                             + "; ".join(problems)
                             + ". Check that the file was saved from the same architecture (same layer sizes "
                               "and names); pass strict=False to skip missing/unexpected keys.")
        with no_grad():
            for k, arr in arrays.items():
                targets[k].copy_(arr.astype(targets[k]._data.dtype, copy=False))
        return _IncompatibleKeys(missing, unexpected)

    def save(self, path) -> str:
        """Write ``state_dict()`` to ``path`` as ``.npz`` (no pickle); returns the path written."""
        return save_state_dict(self.state_dict(), path)

    def load(self, path, strict: bool = True) -> "Module":
        """Load a ``.npz`` written by :meth:`save` (never unpickles); returns self for chaining."""
        self.load_state_dict(load_state_dict(path), strict=strict)
        return self

    # ---- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))


# ---- .npz files (no pickle) ---------------------------------------------------------------------
_DTYPES_KEY = "__aisys_dtypes__"      # names of entries stored as raw bits (bfloat16), with their dtype


def save_state_dict(state_dict, path) -> str:
    """Save a mapping name -> Tensor/array as ``.npz`` (adds the suffix if missing, like np.savez).

    numpy cannot describe bfloat16 without pickle, so such entries are stored as their raw uint16 bits
    and named in a small string array; :func:`load_state_dict` restores them.
    """
    arrays, special = {}, []
    for k, v in state_dict.items():
        if not isinstance(k, str) or k == _DTYPES_KEY:
            raise ValueError(f"save_state_dict: key {k!r} is not allowed (keys are dotted parameter names)")
        arr = v._data if isinstance(v, Tensor) else np.asarray(v)
        if arr.dtype.kind not in "biuf":
            dt = _dt.from_numpy(arr.dtype)           # TypeError naming the dtype if aisys does not know it
            arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
            special.append(f"{k}={dt.name}")
        if arr.dtype == object:
            raise TypeError(f"save_state_dict: {k} holds Python objects; only numeric tensors can be saved")
        arrays[k] = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)   # (keeps 0-d arrays 0-d)
    if special:
        arrays[_DTYPES_KEY] = np.array(special, dtype=np.str_)
    path = os.fspath(path) if not hasattr(path, "write") else path
    np.savez(path, **arrays)
    if isinstance(path, str) and not path.endswith(".npz"):
        path += ".npz"
    return path


def load_state_dict(path) -> "OrderedDict[str, Tensor]":
    """Read a ``.npz`` state dict with ``allow_pickle=False`` (a weights file cannot run code)."""
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"load_state_dict: no file at {path!r}; save one with module.save(path)") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"load_state_dict: {path!r} is a single .npy array, not an .npz state dict")
    with f:
        special = {}
        if _DTYPES_KEY in f.files:
            for item in f[_DTYPES_KEY].tolist():
                k, _, name = item.partition("=")
                special[k] = _dt.from_name(name)
        out = OrderedDict()
        for k in f.files:
            if k == _DTYPES_KEY:
                continue
            arr = f[k]
            if k in special:
                arr = arr.view(special[k].np)
            out[k] = Tensor(arr)
    return out
