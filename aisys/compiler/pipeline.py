"""What a pipeline is made of: a :class:`Pass` (a pass function with bound options and a name) and a
:class:`Fixpoint` (passes repeated until a round changes nothing). The pass manager runs them; the passes
package builds the default pipeline from them."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Pass:
    """A pass function with bound options and a display name."""
    fn: Callable
    name: str = ""
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.name:
            self.name = pass_name(self.fn)

    def __call__(self, rw) -> None:
        return self.fn(rw, **self.options)


@dataclass
class Fixpoint:
    """Run ``passes`` again and again until a whole round changes nothing (or ``max_rounds``)."""
    passes: list
    max_rounds: int = 8
    name: str = "fixpoint"


def pass_name(fn) -> str:
    if isinstance(fn, Pass):
        return fn.name
    if isinstance(fn, functools.partial):
        return pass_name(fn.func)
    return getattr(fn, "pass_name", None) or getattr(fn, "__name__", type(fn).__name__)
