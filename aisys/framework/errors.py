"""Errors that teach: every message names the op, the shapes or values, the rule that failed and the
user's own file:line (the first stack frame outside the aisys package)."""
from __future__ import annotations

import os
import sys

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # .../aisys


def user_location(skip_internal: bool = True) -> str:
    """'file.py:12' of the innermost frame that is not aisys code (a notebook cell shows as <cell>)."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not (skip_internal and (fn.startswith(_PKG_DIR) or fn.startswith("<frozen"))):
            if "ipykernel_" in fn:
                fn = "<cell>"
            return f"{fn}:{f.f_lineno}"
        f = f.f_back
    return "<unknown>"


class ShapeError(ValueError):
    """A shape or dtype rule of an op failed. Attributes: op, shapes, rule, location."""

    def __init__(self, op: str, message: str, shapes=(), rule: str = "", location: str | None = None):
        self.op, self.shapes, self.rule = op, tuple(shapes), rule
        self.location = location or user_location()
        text = f"{op}: {message}"
        if rule:
            text += f" — rule: {rule}"
        text += f" (at {self.location})"
        super().__init__(text)


class AnomalyError(FloatingPointError):
    """Raised under ``aisys.detect_anomaly()`` by the first op that produced NaN or Inf."""
