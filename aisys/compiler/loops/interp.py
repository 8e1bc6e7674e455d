"""The executable spec: the loop IR run statement by statement in Python (small sizes).

Every compiled kernel must agree with it; outputs start as NaN (or the dtype's extreme) so an element the
nest forgets to write shows up.
"""
from __future__ import annotations

import numpy as np

from ...framework import scalar as _S
from .ir import Allocate, For, If, Let, LoweredFunc, Seq, Store
from .te import LoopsError, Node


def check_arrays(f: LoweredFunc, arrays, who: str) -> list[np.ndarray]:
    """Inputs as numpy arrays of the placeholders' shapes and dtypes (a clear error otherwise)."""
    ins = f.params[:len(f.params) - len(f.schedule.outputs)]
    if len(arrays) != len(ins):
        raise LoopsError(f"{who}: the kernel takes {len(ins)} input(s) ({', '.join(p.name for p in ins)}), "
                         f"got {len(arrays)}")
    out = []
    for p, a in zip(ins, arrays):
        a = np.asarray(a)
        if a.shape != p.shape:
            raise LoopsError(f"{who}: {p.name} must have shape {p.shape}, got {a.shape}")
        if a.dtype != p.dtype.np:
            raise LoopsError(f"{who}: {p.name} must be {p.dtype.name}, got {a.dtype} (cast with .astype)")
        out.append(np.ascontiguousarray(a))
    return out


def _poison(shape, dtype) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return np.full(shape, np.nan, dtype)
    if np.dtype(dtype).kind == "b":
        return np.zeros(shape, dtype)
    return np.full(shape, np.iinfo(dtype).min, dtype)


def interpret(s, *arrays):
    """Run a schedule's loop nest (or a lowered function) in Python on numpy inputs; returns the output
    (a tuple for several outputs)."""
    from .lower import lower
    f = s if isinstance(s, LoweredFunc) else lower(s)
    ins = check_arrays(f, arrays, "interpret")
    mem = {id(p): a for p, a in zip(f.params, ins)}
    outs = [_poison(t.shape, t.dtype.np) for t in f.schedule.outputs]
    for t, a in zip(f.schedule.outputs, outs):
        mem[id(t)] = a
    env: dict = {}
    with np.errstate(all="ignore"):
        _run(f.body, env, mem)
    return outs[0] if len(outs) == 1 else tuple(outs)


def _run(s, env, mem):
    if isinstance(s, Seq):
        for x in s.stmts:
            _run(x, env, mem)
    elif isinstance(s, For):
        for i in range(s.extent):
            env[s.var] = i
            _run(s.body, env, mem)
    elif isinstance(s, Let):
        env[s.var] = int(_eval(s.value, env, mem))
        _run(s.body, env, mem)
    elif isinstance(s, If):
        if _eval(s.cond, env, mem):
            _run(s.body, env, mem)
    elif isinstance(s, Allocate):
        mem[id(s.buffer)] = _poison(s.buffer.shape, s.buffer.dtype.np)
        _run(s.body, env, mem)
    elif isinstance(s, Store):
        arr = mem[id(s.buffer)]
        arr[tuple(int(_eval(i, env, mem)) for i in s.indices)] = _eval(s.value, env, mem)
    else:
        raise TypeError(f"interpret: unknown statement {s!r}")


def _eval(n: Node, env, mem):
    op = n.op
    if op == "int" or op == "const":
        return n.value
    if op == "var":
        return env[n.value]
    if op == "load":
        return mem[id(n.value)][tuple(int(_eval(i, env, mem)) for i in n.args)]
    if op == "cast":
        return n.value.np.type(_eval(n.args[0], env, mem))
    if op == "floordiv":
        return _eval(n.args[0], env, mem) // _eval(n.args[1], env, mem)
    if op == "mod":
        return _eval(n.args[0], env, mem) % _eval(n.args[1], env, mem)
    if op == "select":
        return _eval(n.args[1], env, mem) if _eval(n.args[0], env, mem) else _eval(n.args[2], env, mem)
    if op in ("and", "or"):
        a = bool(_eval(n.args[0], env, mem))
        if op == "and":
            return a and bool(_eval(n.args[1], env, mem))
        return a or bool(_eval(n.args[1], env, mem))
    p = _S.PRIMS[op]
    return p.numpy(*[_eval(a, env, mem) for a in n.args])
