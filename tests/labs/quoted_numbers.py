"""Find the quantities a lab's prose states ("57 ops", "≈ 1350 MAC/B", "two epochs") and whether the notebook
itself produced them.

A quantity is a number followed by a unit or a counted noun. It is *produced by the notebook* when one line
of a code cell's source or output holds the same number (decimals: the same value at the prose's precision;
"≈"/"~"/"about": within 5 %) next to the same unit. Anything else must be listed in the lab generator's
``QUOTED`` table: a callable that computes it from the library (checked), or the text of a citation (a
published figure the library does not compute). That is how "the text says 57 ops, the cell prints 52"
cannot happen.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# unit or counted noun -> the stem looked for in the same output line
_UNITS = {
    "B": "B", "kB": "kB", "KiB": "KiB", "MB": "MB", "MiB": "MiB", "GB": "GB", "GiB": "GiB",
    "GB/s": "GB/s", "TB/s": "TB/s", "FLOP/B": "FLOP/B", "MAC/B": "MAC/B", "op/B": "op/B",
    "FLOPs": "FLOP", "FLOP": "FLOP", "MACs": "MAC", "MAC": "MAC", "TOPS": "TOPS", "TFLOPS": "TFLOPS",
    "MHz": "MHz", "GHz": "GHz", "pJ": "pJ", "%": "%",
    "ops": "op", "op": "op", "nodes": "node", "node": "node", "kernels": "kernel", "kernel": "kernel",
    "epochs": "epoch", "epoch": "epoch", "cycles": "cycle", "cycle": "cycle", "layers": "layer",
    "buffers": "buffer", "bytes": "byte", "instructions": "instruction", "folds": "fold", "fold": "fold",
    "sweeps": "sweep", "sweep": "sweep", "PEs": "PE", "images": "image", "parameters": "param",
    "activations": "activation", "rewrites": "rewrite", "launches": "launch", "passes": "pass",
    "tensors": "tensor", "MMAs": "MMA", "samples": "sample", "examples": "example",
}
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_APPROX = r"(?:≈|~|about|around|roughly|nearly|some)\s*"
QUANTITY = re.compile(rf"(?P<approx>{_APPROX})?(?<![\w.%/^−-])(?P<num>{_NUMBER}|{'|'.join(_WORDS)})"
                      rf"(?:\s|\u2009|\u00a0)?(?P<unit>{_UNIT_RE})(?![\w/])", re.I)
NUMBER_IN_OUTPUT = re.compile(rf"(?<![\w.%])(?:{_NUMBER})(?![\d])")
APPROX_TOLERANCE = 0.05


@dataclass(frozen=True)
class Quantity:
    text: str           # as written, e.g. "≈ 1350 MAC/B"
    value: float
    decimals: int
    approx: bool
    unit: str

    @property
    def key(self) -> str:
        """How QUOTED names it: the number and unit as written, without the approximation sign."""
        return self.text.split(maxsplit=1)[1] if self.approx and " " in self.text else self.text


def prose(markdown: str) -> str:
    """Markdown without what is not prose: fenced and inline code, LaTeX, links' targets."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"`[^`\n]+`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text.replace("**", "")


def quantities(markdown: str) -> list[Quantity]:
    found = []
    for m in QUANTITY.finditer(prose(markdown)):
        raw, unit = m.group("num"), m.group("unit")
        if unit.lower() in {"b"} and unit != "B":
            continue                                   # a lone "b" is a variable, not bytes
        if unit not in _UNITS:                         # matched case-insensitively: keep only the real spelling
            match = next((u for u in _UNITS if u.lower() == unit.lower() and u.islower() == unit.islower()), None)
            if match is None:
                continue
            unit = match
        if raw.lower() in _WORDS:
            value, decimals = float(_WORDS[raw.lower()]), 0
        else:
            digits = raw.replace(",", "")
            value, decimals = float(digits), len(digits.split(".")[1]) if "." in digits else 0
        found.append(Quantity(" ".join(m.group(0).split()), value, decimals, bool(m.group("approx")), unit))
    return found


def _numbers(line: str) -> list[tuple[float, str]]:
    return [(float(t.replace(",", "")), t) for t in NUMBER_IN_OUTPUT.findall(line)]


def produced(q: Quantity, lines: list[str]) -> bool:
    """Does some line of the notebook's code or outputs state ``q`` (same number next to the same unit)?"""
    stem = _UNITS[q.unit]
    for line in lines:
        has_unit = stem in line if not stem.isalpha() or stem.isupper() or stem[0].isupper() \
            else stem.lower() in line.lower()
        if not has_unit:
            continue
        for value, _ in _numbers(line):
            if q.approx:
                if abs(value - q.value) <= APPROX_TOLERANCE * max(abs(q.value), 1e-12):
                    return True
            elif abs(value - q.value) <= 0.5 * 10 ** -q.decimals + 1e-9 * abs(q.value):
                return True
    return False


def matches_library(q: Quantity, value: float) -> bool:
    """A QUOTED callable's value agrees with the prose (at the prose's precision; approximate within 5 %)."""
    if q.approx:
        return abs(value - q.value) <= APPROX_TOLERANCE * max(abs(q.value), 1e-12)
    return abs(value - q.value) <= 0.5 * 10 ** -q.decimals + 1e-9 * abs(q.value)
