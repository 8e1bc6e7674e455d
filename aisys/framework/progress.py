"""A tiny text progress bar for long loops (training, cluster simulation): no dependencies, terminals and notebooks.

It redraws one line with a carriage return (Jupyter's output area honours ``\\r`` too) and ends with
a newline. Turn it off per call (``progress=False``) or everywhere with ``AISYS_PROGRESS=0``.
The bar shows no wall-clock time, so a notebook's recorded output does not change between runs.
"""
from __future__ import annotations

import os
import sys


def progress_enabled(flag: bool | None = True) -> bool:
    """A call's ``progress=`` flag, overridden to off by the environment variable AISYS_PROGRESS=0."""
    if os.environ.get("AISYS_PROGRESS", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return bool(flag)


class ProgressBar:
    """``bar = ProgressBar(total, desc="train"); bar.update(loss=0.3); ...; bar.close()``."""

    def __init__(self, total: int, desc: str = "", enabled: bool | None = True, width: int = 24, file=None):
        self.total, self.desc, self.width = max(int(total), 1), desc, width
        self.enabled = progress_enabled(enabled)
        self.file = file
        self.n = 0
        self._last_len = 0
        self._last_drawn = -1
        self.postfix = ""

    def update(self, n: int = 1, **postfix) -> None:
        self.n = min(self.n + n, self.total)
        if postfix:
            self.postfix = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in postfix.items())
        # redraw at most ~50 times per bar, plus the last step
        step = max(self.total // 50, 1)
        if self.n == self.total or self.n - self._last_drawn >= step:
            self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        done = int(self.width * self.n / self.total)
        bar = "#" * done + "-" * (self.width - done)
        text = f"{self.desc + ' ' if self.desc else ''}[{bar}] {self.n}/{self.total}"
        if self.postfix:
            text += "  " + self.postfix
        pad = " " * max(self._last_len - len(text), 0)
        out = self.file or sys.stdout
        out.write("\r" + text + pad)
        out.flush()
        self._last_len = len(text)
        self._last_drawn = self.n

    def close(self) -> None:
        if self.enabled:
            self._draw()
            (self.file or sys.stdout).write("\n")
            (self.file or sys.stdout).flush()
            self.enabled = False

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable, total: int | None = None, desc: str = "", enabled: bool | None = True):
    """Wrap an iterable with a ProgressBar (like tqdm's simplest use)."""
    if total is None:
        total = len(iterable)
    with ProgressBar(total, desc, enabled) as bar:
        for item in iterable:
            yield item
            bar.update()
