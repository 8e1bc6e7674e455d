"""Load generated kernel source as a real Python module, compiled by numba with ``cache=True``.

numba's on-disk cache needs a function that lives in a file (it keys the cache on the file's path,
modification time and the function's line). So generated source is written once to
``$AISYS_CACHE_DIR/kernels/k_<hash>.py`` (default ``~/.cache/aisys/kernels``), named by the hash of
its text, and imported from there. The first process compiles (a few hundred milliseconds per kernel)
and numba stores the machine code in ``__pycache__`` beside the file; later processes load it in
milliseconds. The file is never rewritten once it exists, so the cache stays valid.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

_LOADED: dict[str, object] = {}


def cache_dir() -> Path:
    """Where generated kernels live: ``$AISYS_CACHE_DIR/kernels`` or ``~/.cache/aisys/kernels``."""
    root = os.environ.get("AISYS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "aisys")
    return Path(root) / "kernels"


def kernel_key(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]


def _write_once(path: Path, source: str) -> None:
    if path.exists():
        if path.read_text(encoding="utf-8") == source:
            return
        raise RuntimeError(f"kernel cache file {path} exists with different content (hash collision or a "
                           f"hand-edited file); delete it or set AISYS_CACHE_DIR to a fresh directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(source)
    os.replace(tmp, path)          # atomic: a concurrent process sees the whole file or none


def load_kernel(source: str, entry: str = "kernel"):
    """Return the numba-compiled function ``entry`` defined by ``source`` (compiled lazily on first call,
    cached on disk). The same source text always gives the same function object in one process."""
    key = kernel_key(source)
    if key in _LOADED:
        return getattr(_LOADED[key], entry)
    path = cache_dir() / f"k_{key}.py"
    try:
        _write_once(path, source)
    except OSError as e:
        raise OSError(f"cannot write the kernel cache at {path.parent} ({e}); set AISYS_CACHE_DIR to a "
                      f"writable directory") from e
    name = f"aisys_kernel_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    _LOADED[key] = mod
    return getattr(mod, entry)


def loaded_kernels() -> dict[str, str]:
    """key -> file path of every kernel module loaded in this process."""
    return {k: getattr(m, "__file__", "") for k, m in _LOADED.items()}
