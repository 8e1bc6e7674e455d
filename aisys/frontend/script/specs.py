"""Input specs (shape and dtype, e.g. ``"f32[1,4]"``) and the type records the semantic pass reports."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...framework import dtypes as _dt
from ...framework.registry import Spec
from ...framework.tensor import Tensor
from .names import NameInfo


# ---- specs -----------------------------------------------------------------------------------------------
_SPEC_RE = re.compile(r"^\s*([a-z]+\d*)\s*\[\s*([\d\s,]*)\]\s*$")
_SHORT = {d.short: d for d in _dt.ALL}


def parse_spec(x) -> Spec | Any:
    """An input spec from a tensor, an array, a Spec, or text like "f32[1,4]"; Python values pass through
    (the compiled graph specializes on them)."""
    if isinstance(x, Spec):
        return x
    if isinstance(x, Tensor):
        return Spec(tuple(x.shape), x.dtype)
    if isinstance(x, np.ndarray):
        return Spec(tuple(x.shape), _dt.from_numpy(x.dtype))
    if isinstance(x, str):
        m = _SPEC_RE.match(x)
        if not m or m.group(1) not in _SHORT:
            raise ValueError(f"cannot read the spec {x!r}: write a dtype and a shape like \"f32[1,4]\" "
                             f"(dtypes: {', '.join(_SHORT)})")
        dims = tuple(int(d) for d in m.group(2).replace(" ", "").split(",") if d)
        return Spec(dims, _SHORT[m.group(1)])
    return x


def _type_str(v) -> str:
    if isinstance(v, Tensor):
        return f"{v.dtype.short}[{','.join(map(str, v.shape))}]"
    return f"{type(v).__name__} {v!r}"[:40]


@dataclass
class TypeRecord:
    line: int
    what: str
    type: str


@dataclass
class SemanticReport:
    """The semantic pass as a learner sees it: what each name means and the type of every value."""
    names: dict[str, NameInfo]
    types: list[TypeRecord] = field(default_factory=list)

    def __str__(self) -> str:
        lines = ["names:"]
        for info in self.names.values():
            lines.append(f"  {info.name:<10} {info.kind:<13} {info.detail}".rstrip())
        lines.append("types:")
        for r in self.types:
            lines.append(f"  line {r.line:<4} {r.what:<16} {r.type}")
        return "\n".join(lines)
