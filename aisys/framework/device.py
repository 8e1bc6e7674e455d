"""Devices, PyTorch's names: every aisys tensor lives on the CPU (numpy), so "cpu" works everywhere.

PyTorch programs name a device on almost every line (``torch.device(...)``, ``x.to(device)``,
``model.cuda()``, ``device=`` in factories, ``torch.cuda.is_available()``). They run unchanged here when
they pick the device the usual way — ``"cuda" if torch.cuda.is_available() else "cpu"`` — because
``aisys.cuda.is_available()`` is False. Asking for CUDA (or MPS) explicitly raises an error that says
where the accelerator parts of this lab live instead of silently running on the CPU.
"""
from __future__ import annotations

import types

__all__ = ["device", "as_device", "set_default_device", "get_default_device", "cuda", "backends", "accelerator",
           "NO_ACCELERATOR"]

_KNOWN = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "npu")

NO_ACCELERATOR = (
    "aisys runs on the CPU (its tensors are numpy arrays), so there is no {what} device here. Use device='cpu', "
    "or pick the device the portable way: 'cuda' if aisys.cuda.is_available() else 'cpu' (is_available() is "
    "False). To see how accelerators run a model, aisys.chip simulates an AI chip (lab 08: systolic arrays, "
    "roofline) and aisys.kernels runs CUDA-style kernels through numba.cuda on the CPU (lab 06, the CUDA "
    "programming model).")


class device:
    """``aisys.device("cpu")`` (also "cpu:0"). A CUDA/MPS device can be named, as in torch, but using it for a
    tensor raises (see NO_ACCELERATOR)."""

    __slots__ = ("type", "index")

    def __init__(self, type, index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"aisys.device: expected a device string like 'cpu', got {type!r}")
        kind, _, idx = type.partition(":")
        if kind not in _KNOWN:
            raise ValueError(f"aisys.device: unknown device type {type!r}; aisys runs on 'cpu' "
                             f"(PyTorch also knows {', '.join(_KNOWN[1:])})")
        if idx:
            if not idx.isdigit() or index is not None:
                raise ValueError(f"aisys.device: invalid device string {type!r}; use 'cpu' or 'cpu:0'")
            index = int(idx)
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("aisys.device is immutable")

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type + (f":{self.index}" if self.index is not None else "")


CPU = device("cpu")


def as_device(d) -> device:
    """The device ``d`` names, checked: the CPU, or an error explaining there is no accelerator."""
    if d is None:
        return _default[0]
    if isinstance(d, int) and not isinstance(d, bool):
        raise RuntimeError(NO_ACCELERATOR.format(what=f"CUDA device {d} (an integer device means a GPU)"))
    dev = d if isinstance(d, device) else device(d)
    if dev.type != "cpu":
        raise RuntimeError(NO_ACCELERATOR.format(what=repr(str(dev))))
    return dev


_default = [CPU]


def set_default_device(d) -> None:
    """Where factories put tensors when ``device=`` is not given: only the CPU exists (None resets)."""
    _default[0] = CPU if d is None else as_device(d)


def get_default_device() -> device:
    return _default[0]


def _false(*args, **kwargs) -> bool:
    return False


def _nothing(*args, **kwargs) -> None:
    return None


def _no_gpu(name):
    def f(*args, **kwargs):
        raise RuntimeError(f"aisys.cuda.{name}: " + NO_ACCELERATOR.format(what="CUDA"))
    f.__name__ = name
    return f


cuda = types.ModuleType("aisys.cuda", "CUDA queries as in torch.cuda: there is no GPU, so is_available() is False.")
cuda.is_available = _false
cuda.device_count = lambda: 0
cuda.is_initialized = _false
cuda.manual_seed = _nothing               # seeding a device that is not there is harmless (scripts do it)
cuda.manual_seed_all = _nothing
cuda.empty_cache = _nothing
cuda.synchronize = _no_gpu("synchronize")
cuda.current_device = _no_gpu("current_device")
cuda.get_device_name = _no_gpu("get_device_name")
cuda.set_device = _no_gpu("set_device")

backends = types.ModuleType("aisys.backends", "Backend switches as in torch.backends: no accelerator is available.")
backends.cuda = types.SimpleNamespace(is_built=_false, is_available=_false)
backends.mps = types.SimpleNamespace(is_available=_false, is_built=_false)
backends.cudnn = types.SimpleNamespace(is_available=_false, enabled=False, deterministic=False, benchmark=False)

accelerator = types.ModuleType("aisys.accelerator", "torch.accelerator: no accelerator is available.")
accelerator.is_available = _false
accelerator.current_accelerator = _nothing
accelerator.device_count = lambda: 0
