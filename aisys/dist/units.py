"""Units for interconnects, stated once: bandwidth in GB/s with the Gbps figure beside it.

Vendors quote links in bits per second (InfiniBand HDR "200 Gb/s", TPU ICI "656 Gbit/s") and GPU
makers in bytes per second (NVLink 3 "600 GB/s", counting both directions). Learners mix them up
(AISystem course issue #271), so every number aisys prints says both: ``25 GB/s (200 Gbps)``.
GB is 10⁹ bytes and Gbps is 10⁹ bits per second, as in the vendors' data sheets; buffers are sized
in binary units (MiB = 2²⁰ bytes), as memory is.
"""
from __future__ import annotations

import math

__all__ = ["GB", "gbps", "from_gbps", "format_bandwidth", "format_bytes", "format_time"]

GB = 1e9


def gbps(bytes_per_s: float) -> float:
    """Bytes per second in gigabits per second (×8 / 10⁹)."""
    return bytes_per_s * 8 / 1e9


def from_gbps(gigabits_per_s: float) -> float:
    """A link speed quoted in Gbit/s, in bytes per second (÷8 × 10⁹)."""
    return gigabits_per_s * 1e9 / 8


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def format_bandwidth(bytes_per_s: float) -> str:
    """``"25 GB/s (200 Gbps)"``: bytes per second first, the bit rate beside it."""
    if not math.isfinite(bytes_per_s):
        return "unlimited"
    return f"{_num(bytes_per_s / GB)} GB/s ({_num(gbps(bytes_per_s))} Gbps)"


def format_bytes(n: float) -> str:
    """Binary units for buffers: ``64 MiB``, ``1.5 KiB``, ``12 B``."""
    n = float(n)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{_num(n / size)} {unit}"
    return f"{n:.0f} B"


def format_time(seconds: float) -> str:
    """``"12.3 µs"``, ``"4.1 ms"``, ``"2.00 s"``."""
    s = abs(seconds)
    if s >= 1:
        return f"{seconds:.3g} s"
    if s >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if s >= 1e-6 or s == 0:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e9:.3g} ns"
