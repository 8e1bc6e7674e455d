"""The loop IR a schedule lowers to: loops, bindings, loads and stores, local buffers, guards.

Statements are small frozen records (:class:`For`, :class:`Let`, :class:`Store`, :class:`Allocate`,
:class:`If`, :class:`Seq`); values are the tensor-expression :class:`~.te.Node` trees, with ``load`` nodes
reading a :class:`Buffer` (or a tensor) at index expressions. ``str(func)`` prints the nest as readable
Python-like pseudocode with the compute's own names; :func:`interpret` (interp.py) runs it and
:func:`build` (kernel.py) compiles it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .te import IterVar, Node, expr_text

KINDS = ("serial", "unrolled", "vectorized", "parallel")


class Buffer:
    """Memory a kernel reads or writes: a kernel argument (``scope`` "global") or a buffer the kernel
    allocates (``scope`` "local": a packed panel, an accumulator block; "register" once every access has a
    constant index, so the code generator keeps it in scalar variables)."""

    __slots__ = ("name", "shape", "dtype", "scope")

    def __init__(self, name, shape, dtype, scope="global"):
        self.name, self.shape, self.dtype, self.scope = name, tuple(int(s) for s in shape), dtype, scope

    def __repr__(self):
        return f"<{self.scope} buffer {self.name}{list(self.shape)} {self.dtype.name}>"


class Stmt:
    pass


@dataclass(eq=False)
class For(Stmt):
    var: IterVar
    extent: int
    kind: str
    body: Stmt
    step: str = ""          # the schedule step that made or annotated this loop (LoopNestView highlights it)


@dataclass(eq=False)
class Let(Stmt):
    var: IterVar
    value: Node
    body: Stmt


@dataclass(eq=False)
class Store(Stmt):
    buffer: object
    indices: tuple
    value: Node


@dataclass(eq=False)
class Allocate(Stmt):
    buffer: Buffer
    body: Stmt


@dataclass(eq=False)
class If(Stmt):
    cond: Node
    body: Stmt


@dataclass(eq=False)
class Seq(Stmt):
    stmts: list = field(default_factory=list)


def seq(*stmts) -> Stmt:
    flat = []
    for s in stmts:
        if s is None:
            continue
        flat.extend(s.stmts if isinstance(s, Seq) else [s])
    return flat[0] if len(flat) == 1 else Seq(flat)


@dataclass(eq=False)
class LoweredFunc:
    """A lowered kernel: ``params`` (inputs in placeholder order, then the output), the statement tree and
    the schedule it came from. ``str()`` is the pseudocode."""
    name: str
    params: list
    body: Stmt
    schedule: object = None

    def __str__(self) -> str:
        return print_func(self)

    def lines(self) -> list[tuple[int, str, str]]:
        """(depth, text, step) per printed line; ``step`` names the schedule step that made that loop."""
        out = []
        _print(self.body, 1, out)
        return [(0, _signature(self), "")] + out


# ---- printing -------------------------------------------------------------------------------------------
def _signature(f: LoweredFunc) -> str:
    args = ", ".join(f"{b.name}: {b.dtype.name}[{', '.join(map(str, b.shape))}]" for b in f.params)
    return f"def {f.name}({args}):"


def _loop_head(s: For) -> str:
    word = {"serial": "range", "unrolled": "unroll", "vectorized": "vectorize", "parallel": "parallel"}[s.kind]
    return f"for {s.var.name} in {word}({s.extent}):"


def _print(s: Stmt, d: int, out: list) -> None:
    if isinstance(s, Seq):
        for x in s.stmts:
            _print(x, d, out)
    elif isinstance(s, For):
        out.append((d, _loop_head(s), s.step))
        _print(s.body, d + 1, out)
    elif isinstance(s, Let):
        out.append((d, f"{s.var.name} = {expr_text(s.value)}", ""))
        _print(s.body, d, out)
    elif isinstance(s, Store):
        out.append((d, f"{s.buffer.name}[{', '.join(expr_text(i) for i in s.indices)}] = {expr_text(s.value)}", ""))
    elif isinstance(s, Allocate):
        b = s.buffer
        out.append((d, f"{b.name} = allocate(({', '.join(map(str, b.shape))},), {b.dtype.name}, {b.scope})", ""))
        _print(s.body, d, out)
    elif isinstance(s, If):
        out.append((d, f"if {expr_text(s.cond)}:", ""))
        _print(s.body, d + 1, out)
    else:
        raise TypeError(f"loop IR: unknown statement {s!r}")


def print_func(f: LoweredFunc) -> str:
    return "\n".join("    " * d + t for d, t, _ in f.lines())


def walk_stmts(s: Stmt):
    """Every statement, parents before children."""
    yield s
    if isinstance(s, Seq):
        for x in s.stmts:
            yield from walk_stmts(x)
    elif isinstance(s, (For, Let, Allocate, If)):
        yield from walk_stmts(s.body)
