"""``aisys.save`` / ``aisys.load``: tensors, state dicts and checkpoints in the safetensors format — never pickle.

``torch.save`` pickles, so opening a downloaded checkpoint can run arbitrary code. aisys writes the
*safetensors* layout instead (a little-endian u64 header size, a JSON header naming each tensor's dtype,
shape and byte range, then the raw bytes), so a file can only ever hold numbers, and PyTorch users can read
and write it with the ``safetensors`` package (``safetensors.torch.load_file``). What a checkpoint holds
besides tensors — ``{"epoch": 3, "model": state_dict, "optimizer": optimizer.state_dict()}``: numbers,
strings, lists, tuples, dicts — goes into the header's ``__metadata__`` as JSON, with each tensor replaced by
its name. ``aisys.load`` also reads the ``.npz`` files ``Module.save`` writes.
"""
from __future__ import annotations

import io
import json
import os
import struct

import numpy as np

from . import dtypes as _dt
from .device import as_device
from .tensor import Tensor

__all__ = ["save", "load"]

_CODE = {"bool": "BOOL", "int8": "I8", "int32": "I32", "int64": "I64", "float16": "F16", "bfloat16": "BF16",
         "float32": "F32", "float64": "F64"}
_DTYPE = {v: k for k, v in _CODE.items()}
_STRUCT = "aisys.structure"          # __metadata__ key of the nested structure (absent: a flat dict of tensors)
_ALLOWED = "tensors, numbers, strings, None, lists, tuples and dicts"


def _flatten(obj, path: str, tensors: dict):
    """The JSON form of ``obj`` with every tensor moved into ``tensors`` under a unique name."""
    if isinstance(obj, (Tensor, np.ndarray)):
        arr = obj._data if isinstance(obj, Tensor) else obj
        name = path or "tensor"
        while name in tensors:
            name += "_"
        tensors[name] = arr
        return {"__tensor__": name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, _dt.DType):
        return {"__dtype__": obj.name}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{path}.{i}" if path else str(i), tensors) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if isinstance(obj, dict):
        pairs = [[_flatten(k, "", {}) if not isinstance(k, str) else k, _flatten(v, f"{path}.{k}" if path else str(k),
                                                                                  tensors)] for k, v in obj.items()]
        if all(isinstance(k, str) for k in obj) and "__tensor__" not in obj:
            return {"__dict__": dict(pairs)}
        return {"__pairs__": pairs}
    raise TypeError(f"aisys.save stores {_ALLOWED}; {path or 'the object'} is a {type(obj).__name__}. Save "
                    f"model.state_dict() rather than the model (aisys never pickles, so a file cannot run code)")


def _unflatten(obj, tensors: dict):
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__dtype__" in obj:
            return _dt.from_name(obj["__dtype__"])
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"].items()}
        if "__pairs__" in obj:
            return {_unflatten(k, tensors) if isinstance(k, (list, dict)) else k: _unflatten(v, tensors)
                    for k, v in obj["__pairs__"]}
    return obj


def _is_flat(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and isinstance(v, (Tensor, np.ndarray))
                                                       for k, v in obj.items())


def save(obj, f) -> None:
    """Write ``obj`` (a tensor, a state dict, or a checkpoint dict of those and plain values) to the path or
    binary file ``f`` in the safetensors format (see the module docstring). A flat ``{name: tensor}`` dict is
    a plain safetensors file that PyTorch's ``safetensors.torch.load_file`` reads as is."""
    tensors: dict = {}
    meta = {}
    if not _is_flat(obj):
        meta[_STRUCT] = json.dumps(_flatten(obj, "", tensors), separators=(",", ":"))
    else:
        tensors = {k: (v._data if isinstance(v, Tensor) else v) for k, v in obj.items()}
    header: dict = {"__metadata__": meta} if meta else {}
    offset, blobs = 0, []
    for name, arr in tensors.items():
        dt = _dt.from_numpy(arr.dtype)                 # a TypeError naming a dtype aisys cannot hold
        data = np.ascontiguousarray(arr).astype(dt.np.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _CODE[dt.name], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)                   # the format aligns the data to 8 bytes
    payload = struct.pack("<Q", len(head)) + head + b"".join(blobs)
    if hasattr(f, "write"):
        f.write(payload)
    else:
        with open(os.fspath(f), "wb") as fh:
            fh.write(payload)


def load(f, map_location=None, weights_only: bool = True, mmap=None):
    """Read what :func:`save` wrote (or a ``.npz`` state dict from ``Module.save``), returning tensors.
    ``map_location`` may only name the CPU; ``weights_only`` is always true here (nothing is unpickled)."""
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        as_device(map_location)
    raw = f.read() if hasattr(f, "read") else _read(f)
    if raw[:2] == b"PK":                              # a zip: the .npz of Module.save, or torch.save's pickle archive
        import zipfile
        names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
        if not names or not all(n.endswith(".npy") for n in names):
            raise ValueError(f"aisys.load: {_name(f)} is a torch.save checkpoint (a zip of pickles); aisys never "
                             f"unpickles, since a pickle can run code when opened. Convert it once in PyTorch: "
                             f"safetensors.torch.save_file(torch.load(path), 'model.safetensors'), then "
                             f"aisys.load('model.safetensors')")
        from .nn.module import load_state_dict
        return load_state_dict(io.BytesIO(raw))
    if len(raw) < 8:
        raise ValueError(f"aisys.load: {_name(f)} is too short to be a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"aisys.load: {_name(f)} is not a safetensors file (its header claims {n:,} bytes, the file "
                         f"has {len(raw):,}); aisys reads files written by aisys.save or safetensors, never pickles")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError:
        raise ValueError(f"aisys.load: {_name(f)} has no readable safetensors header; aisys reads files written by "
                         f"aisys.save or safetensors (torch.save's pickle files are refused: they can run "
                         f"code)") from None
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(raw)[8 + n:]
    tensors = {}
    for name, info in header.items():
        kind = _DTYPE.get(info.get("dtype"))
        if kind is None:
            raise TypeError(f"aisys.load: tensor {name!r} has dtype {info.get('dtype')!r}, which aisys cannot hold "
                            f"(it reads {', '.join(_DTYPE)})")
        a, b = info["data_offsets"]
        dt = _dt.from_name(kind)
        arr = np.frombuffer(data[a:b], dtype=dt.np.newbyteorder("<")).astype(dt.np).reshape(info["shape"])
        tensors[name] = Tensor._wrap(arr.copy())
    if _STRUCT in meta:
        return _unflatten(json.loads(meta[_STRUCT]), tensors)
    return tensors


def _read(path) -> bytes:
    try:
        with open(os.fspath(path), "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"aisys.load: no file at {os.fspath(path)!r}; write one with aisys.save(obj, path)") \
            from None


def _name(f) -> str:
    return repr(os.fspath(f)) if isinstance(f, (str, os.PathLike)) else "the file"
