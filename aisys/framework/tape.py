"""An explicit tape (Wengert list) for learning autodiff, as in ZOMI's AISystem course (05Framework/02AutoDiff).

aisys's own autograd keeps its tape implicit: every tensor remembers ``_ctx = (op, inputs, attrs)``. This
module writes the same tape out as a list of entries, numbered the way the lecture numbers them, so it can
be printed, swept by hand, and watched (``widgets.autodiff.TapePlayer``). For f = ln x₁ + x₁x₂ − sin x₂::

    v-1 = input x1       = 2
    v0  = input x2       = 5
    v1  = log(v-1)       = 0.693147
    v2  = mul(v-1, v0)   = 10
    v3  = sin(v0)        = -0.958924
    v4  = add(v1, v2)    = 10.6931
    v5  = sub(v4, v3)    = 11.6521     <- output

*Reverse mode* sweeps the list backwards once per output, turning each entry's adjoint v̄ᵢ = ∂y/∂vᵢ into
contributions to its inputs' adjoints with the op's vector-Jacobian product (:func:`local_vjp`). *Forward
mode* sweeps it forwards once per input direction, carrying a dual number ⟨vᵢ, v̇ᵢ⟩ per entry
(:func:`dual_apply`, :func:`local_jvp`). A Jacobian of ℝⁿ→ℝᵐ therefore costs n forward sweeps or m reverse
sweeps (:func:`jacobian`) — why training (m = 1 loss, n = millions of weights) uses reverse mode.

The functions here are also the references of lab 02's exercises: :func:`reverse_grad` (2.1),
:func:`dual_apply` (2.2) and :func:`cube_vjp` (2.3, plugged into the registry with :func:`temporary_op`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from . import dtypes as _dt
from .registry import OPS, defop, get as get_op
from .tensor import Tensor, _Mode, apply, no_grad

LEAF_OPS = ("input", "const")


# ---------------------------------------------------------------------------------------------
# The tape
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One line of the tape: ``name = op(inputs…)`` with its forward value.

    ``inputs`` are indices of earlier entries; ``output`` is this entry's own index (each entry writes
    exactly one value). Inputs are named v₋ₙ₊₁ … v₀ as in the lecture, op results v1, v2, …, constants c1, c2, ….
    """
    index: int
    name: str
    op: str
    inputs: tuple = ()
    attrs: dict = field(default_factory=dict)
    value: np.ndarray = None
    label: str = ""                   # the user's name of an input ("x1"), else ""

    @property
    def output(self) -> int:
        return self.index

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAF_OPS


def format_value(v, digits: int = 6) -> str:
    """A short deterministic rendering: scalars as %g, arrays as dtype[shape] and their first values."""
    a = np.asarray(v)
    if a.size == 1:
        x = a.reshape(()).item()
        return f"{x:.{digits}g}" if isinstance(x, float) else str(x)
    flat = ", ".join(f"{float(t):.{min(digits, 4)}g}" for t in a.reshape(-1)[:4].astype(np.float64))
    return f"{_dt.from_numpy(a.dtype).short}{list(a.shape)} [{flat}{', …' if a.size > 4 else ''}]"


class Tape:
    """The recorded evaluation of one function: a list of :class:`Entry`, its inputs and its output.

    Build it with :meth:`record` (run a function) or :meth:`from_tensor` (read a tensor's implicit tape).
    Iterating yields the entries in evaluation order; ``tape[i]`` is entry ``i``.
    """

    def __init__(self, entries: list, inputs: list, output: int):
        self.entries = list(entries)
        self.inputs = list(inputs)
        self.output = int(output)

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def record(cls, fn: Callable, *inputs, names=None) -> "Tape":
        """Run ``fn(*inputs)`` and write down every op it applies, in order.

        Python numbers and integer arrays become float64 tensors (the lecture's values to 1e-12); float arrays
        and tensors keep their dtype. Inputs require grad, so ``fn`` may itself call ``aisys.grad`` — the
        tape then holds the backward ops too. Tensors that ``fn`` creates or captures become ``const`` entries.
        """
        xs = [_as_input(v) for v in inputs]
        names = _input_names(names, len(xs))
        builder = _Builder()
        for k, x in enumerate(xs):
            builder.add_input(x, names[k], len(xs))
        _Mode.observers.append(builder)
        try:
            out = fn(*xs)
        finally:
            _Mode.observers.remove(builder)
        if not isinstance(out, Tensor):
            raise TypeError(f"Tape.record: the function must return a Tensor, got {type(out).__name__}")
        return cls(builder.entries, builder.input_ids, builder.index_of(out))

    @classmethod
    def from_tensor(cls, t: Tensor, names=None) -> "Tape":
        """The implicit tape behind ``t`` (computed from inputs with requires_grad=True), written out."""
        from .autograd import _FREED, _topo
        if t._ctx is None:
            raise ValueError("Tape.from_tensor: this tensor has no recorded history; compute it from inputs "
                             "created with requires_grad=True (or use Tape.record(fn, *inputs))")
        if _Mode.rebases:
            try:
                _topo([t])                                      # resolves inputs rebased by in-place ops
            except RuntimeError:
                pass                                            # a freed graph: reported below
        order, seen, leaves = [], set(), []
        stack = [(t, False)]
        while stack:                                            # iterative DFS: inputs before users
            x, done = stack.pop()
            if done:
                order.append(x)
                continue
            if id(x) in seen:
                continue
            seen.add(id(x))
            if x._ctx is None:
                leaves.append(x)
                continue
            if x._ctx[1] is _FREED:
                raise ValueError("Tape.from_tensor: the graph was freed by backward(); read the tape before "
                                 "calling backward(), or call backward(retain_graph=True)")
            stack.append((x, True))
            for y in reversed(x._ctx[1]):
                if id(y) not in seen:
                    stack.append((y, False))
        inputs = [x for x in leaves if x.requires_grad]
        names = _input_names(names, len(inputs))
        builder = _Builder()
        for k, x in enumerate(inputs):
            builder.add_input(x, names[k], len(inputs))
        for x in order:
            op, ins, attrs = x._ctx
            builder(op, ins, attrs, x)
        return cls(builder.entries, builder.input_ids, builder.index_of(t))

    # ---- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, i: int) -> Entry:
        return self.entries[i]

    @property
    def value(self) -> np.ndarray:
        """The output's forward value."""
        return self.entries[self.output].value

    @property
    def op_entries(self) -> list:
        return [e for e in self.entries if not e.is_leaf]

    def line(self, e: Entry) -> str:
        if e.op == "input":
            return f"{e.name} = input {e.label}".rstrip()
        if e.op == "const":
            return f"{e.name} = const"
        return f"{e.name} = {e.op}({', '.join(self.entries[i].name for i in e.inputs)})"

    def __str__(self) -> str:
        pad = max(len(e.name) for e in self.entries)
        lines = [self.line(e).replace(f"{e.name} = ", f"{e.name:<{pad}} = ", 1) for e in self.entries]
        width = max(len(t) for t in lines)
        rows = [f"{text:<{width}}  = {format_value(e.value)}" + ("     <- output" if e.index == self.output else "")
                for text, e in zip(lines, self.entries)]
        return "\n".join(rows)

    def __repr__(self) -> str:
        n = len(self.inputs)
        return f"<Tape: {n} input{'s' * (n != 1)}, {len(self.op_entries)} ops, output {self.entries[self.output].name}>"


def _as_input(v) -> Tensor:
    """Tensors keep their data and dtype; Python numbers and integer arrays become float64; float arrays stay."""
    if isinstance(v, Tensor):
        t = Tensor._wrap(v._data)
    else:
        a = np.asarray(v)
        if a.dtype.kind != "f" and a.dtype != _dt.bfloat16.np:
            a = a.astype(np.float64)
        t = Tensor._wrap(a)
    t.requires_grad = t.dtype.is_floating       # so fn may differentiate its inputs (the tape of a gradient)
    return t


def _input_names(names, n: int) -> list:
    if names is None:
        return [f"x{k + 1}" for k in range(n)]
    names = list(names)
    if len(names) != n:
        raise ValueError(f"Tape: {len(names)} names for {n} inputs")
    return names


class _Builder:
    """The observer that writes each applied op down as an entry (tensors are tracked by identity)."""

    def __init__(self):
        self.entries: list[Entry] = []
        self.input_ids: list[int] = []
        self._ids: dict[int, int] = {}
        self._alive: list[Tensor] = []              # keep recorded tensors alive so ids stay unique
        self._ops = 0
        self._consts = 0

    def _add(self, t: Tensor, **kw) -> int:
        i = len(self.entries)
        self.entries.append(Entry(index=i, value=t._data, **kw))
        self._ids[id(t)] = i
        self._alive.append(t)
        return i

    def add_input(self, t: Tensor, label: str, n_inputs: int) -> None:
        k = len(self.input_ids)
        self.input_ids.append(self._add(t, name=f"v{k - n_inputs + 1}", op="input", label=label))

    def index_of(self, t: Tensor) -> int:
        i = self._ids.get(id(t))
        if i is None:
            i = self._const(t)
        return i

    def _const(self, t: Tensor) -> int:
        self._consts += 1
        return self._add(t, name=f"c{self._consts}", op="const")

    def __call__(self, op, inputs, attrs, out):
        idx = tuple(self.index_of(t) for t in inputs)
        self._ops += 1
        self._add(out, name=f"v{self._ops}", op=op.name, inputs=idx, attrs=dict(attrs))

    def on_inplace(self, t: Tensor, new: Tensor) -> None:
        """``t`` changed in place: from now on it is the entry that computed ``new``."""
        self.index_of(t)
        self._ids[id(t)] = self.index_of(new)


# ---------------------------------------------------------------------------------------------
# Local rules: each op's VJP and JVP from the registry, on numpy values
# ---------------------------------------------------------------------------------------------
def _wrap_inputs(tape: Tape, entry: Entry) -> list:
    ins = []
    for i in entry.inputs:
        t = Tensor._wrap(tape[i].value)
        t.requires_grad = t.dtype.is_floating           # some VJPs skip inputs that need no gradient
        ins.append(t)
    return ins


def local_vjp(tape: Tape, entry: Entry, adjoint) -> tuple:
    """What ``entry`` sends back to each of its inputs: v̄ᵢ·∂entry/∂input (numpy arrays; None: nothing).

    This is the op's registered VJP applied to the recorded values — the *local* step of reverse mode;
    the sweep (order, accumulation) is up to the caller.
    """
    op = get_op(entry.op)
    if op.vjp is None:
        return (None,) * len(entry.inputs)
    g = Tensor._wrap(np.asarray(adjoint, dtype=np.asarray(entry.value).dtype))
    with no_grad():
        grads = op.vjp(g, Tensor._wrap(entry.value), *_wrap_inputs(tape, entry), **entry.attrs)
    return tuple(None if gi is None else np.asarray(gi._data) for gi in grads)


def local_jvp(tape: Tape, entry: Entry, tangents) -> np.ndarray | None:
    """The tangent of ``entry`` given its inputs' tangents (None = zero): the op's registered JVP."""
    op = get_op(entry.op)
    if op.jvp is None or all(t is None for t in tangents):
        return None
    with no_grad():
        out = op.jvp(tuple(None if t is None else Tensor._wrap(np.asarray(t)) for t in tangents),
                     Tensor._wrap(entry.value), *_wrap_inputs(tape, entry), **entry.attrs)
    return None if out is None else np.asarray(out._data)


# ---------------------------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------------------------
def reverse_grad(tape: Tape) -> list:
    """∂output/∂input for every input of a scalar-output tape, in one reverse sweep (exercise 2.1's reference).

    Seed the output's adjoint with 1, visit the entries from last to first, and *add* each entry's
    contributions into its inputs' adjoints: an input used twice (x₁ in ln x₁ + x₁x₂) collects from both uses.
    """
    adjoint = {tape.output: np.ones_like(tape[tape.output].value)}
    for entry in reversed(tape.entries):
        if entry.is_leaf or entry.index not in adjoint:
            continue
        for i, contribution in zip(entry.inputs, local_vjp(tape, entry, adjoint[entry.index])):
            if contribution is None:
                continue
            adjoint[i] = adjoint[i] + contribution if i in adjoint else contribution
    return [adjoint.get(i, np.zeros_like(tape[i].value)) for i in tape.inputs]


@dataclass(frozen=True)
class ReverseStep:
    """One step of a reverse sweep: entry ``entry`` had adjoint ``adjoint`` and sent ``contributions``
    ((input index, array or None), …) to its inputs."""
    step: int
    entry: int
    adjoint: np.ndarray
    contributions: tuple


def reverse_sweep(tape: Tape, seed=None) -> tuple[list, dict]:
    """A reverse sweep that keeps its steps (for :class:`TapePlayer`) and returns (steps, final adjoints).

    ``seed`` is the output's adjoint (default: ones), so a sweep per output row builds a Jacobian.
    """
    out_value = tape[tape.output].value
    adjoint = {tape.output: np.ones_like(out_value) if seed is None else np.asarray(seed, dtype=out_value.dtype)}
    steps = []
    for entry in reversed(tape.entries):
        if entry.is_leaf or entry.index not in adjoint:
            continue
        contributions = local_vjp(tape, entry, adjoint[entry.index])
        for i, c in zip(entry.inputs, contributions):
            if c is not None:
                adjoint[i] = adjoint[i] + c if i in adjoint else c
        steps.append(ReverseStep(len(steps) + 1, entry.index, adjoint[entry.index], tuple(zip(entry.inputs, contributions))))
    return steps, adjoint


# ---------------------------------------------------------------------------------------------
# Forward mode
# ---------------------------------------------------------------------------------------------
class Dual(NamedTuple):
    """A dual number v + v̇ε (ε² = 0): a value and its tangent, the state of forward mode."""
    value: object
    tangent: object

    def __repr__(self) -> str:
        def show(v):
            a = np.asarray(v)
            return repr(float(a.reshape(()))) if a.size == 1 else np.array2string(a, precision=6, separator=", ")
        return f"Dual(value={show(self.value)}, tangent={show(self.tangent)})"


DUAL_OPS = ("add", "sub", "mul", "div", "neg", "exp", "log", "sin", "cos", "tanh", "sqrt", "pow", "sum")


def dual_apply(op: str, *args: Dual, **attrs) -> Dual:
    """Evaluate ``op`` on dual numbers: (value, tangent) in, (value, tangent) out (exercise 2.2's reference).

    Each rule is the op's derivative written as arithmetic on ε: (a + ȧε)(b + ḃε) = ab + (ȧb + aḃ)ε, etc.
    Values and tangents are numpy arrays or floats; numpy broadcasting applies to both alike.
    """
    if op == "add":
        a, b = args
        return Dual(a.value + b.value, a.tangent + b.tangent)
    if op == "sub":
        a, b = args
        return Dual(a.value - b.value, a.tangent - b.tangent)
    if op == "mul":
        a, b = args
        return Dual(a.value * b.value, a.tangent * b.value + a.value * b.tangent)
    if op == "div":
        a, b = args
        q = a.value / b.value
        return Dual(q, (a.tangent - q * b.tangent) / b.value)
    if op == "neg":
        (a,) = args
        return Dual(-a.value, -a.tangent)
    if op == "exp":
        (a,) = args
        e = np.exp(a.value)
        return Dual(e, e * a.tangent)
    if op == "log":
        (a,) = args
        return Dual(np.log(a.value), a.tangent / a.value)
    if op == "sin":
        (a,) = args
        return Dual(np.sin(a.value), np.cos(a.value) * a.tangent)
    if op == "cos":
        (a,) = args
        return Dual(np.cos(a.value), -np.sin(a.value) * a.tangent)
    if op == "tanh":
        (a,) = args
        y = np.tanh(a.value)
        return Dual(y, (1.0 - y * y) * a.tangent)
    if op == "sqrt":
        (a,) = args
        y = np.sqrt(a.value)
        return Dual(y, a.tangent / (2.0 * y))
    if op == "pow":
        a, b = args
        y = np.power(a.value, b.value)
        t = b.value * np.power(a.value, b.value - 1) * a.tangent
        if np.any(b.tangent):                                  # d(aᵇ)/db = aᵇ·ln a, only when b varies
            t = t + y * np.log(a.value) * b.tangent
        return Dual(y, t)
    if op == "sum":
        (a,) = args
        dim, keepdim = attrs.get("dim"), attrs.get("keepdim", False)
        return Dual(np.sum(a.value, axis=dim, keepdims=keepdim), np.sum(a.tangent, axis=dim, keepdims=keepdim))
    raise ValueError(f"dual_apply: no dual-number rule for op {op!r}; rules exist for {', '.join(DUAL_OPS)}")


def jvp_dual(tape: Tape, tangents, rule: Callable = dual_apply) -> Dual:
    """One forward sweep with dual numbers: seed each input with its tangent, apply ``rule`` entry by entry;
    returns the output's Dual (its value and J·tangents)."""
    tangents = list(tangents)
    if len(tangents) != len(tape.inputs):
        raise ValueError(f"jvp_dual: {len(tangents)} tangents for {len(tape.inputs)} inputs")
    duals = {}
    for i, t in zip(tape.inputs, tangents):
        v = tape[i].value
        duals[i] = Dual(v, np.broadcast_to(np.asarray(t, dtype=np.float64), np.shape(v)).copy())
    for e in tape:
        if e.op == "const":
            duals[e.index] = Dual(e.value, np.zeros(np.shape(e.value)))
        elif e.op != "input":
            duals[e.index] = rule(e.op, *[duals[i] for i in e.inputs], **e.attrs)
    return duals[tape.output]


@dataclass(frozen=True)
class ForwardStep:
    """One step of a forward sweep: entry ``entry`` got tangent ``tangent`` (None: zero)."""
    step: int
    entry: int
    tangent: np.ndarray | None


def forward_sweep(tape: Tape, tangents) -> tuple[list, dict]:
    """A forward sweep with the registry's JVP rules, keeping its steps; returns (steps, tangent of each entry)."""
    tan = {i: (None if t is None else np.broadcast_to(np.asarray(t, dtype=tape[i].value.dtype), tape[i].value.shape))
           for i, t in zip(tape.inputs, tangents)}
    steps = []
    for e in tape:
        if e.is_leaf:
            continue
        tan[e.index] = local_jvp(tape, e, [tan.get(i) for i in e.inputs])
        steps.append(ForwardStep(len(steps) + 1, e.index, tan[e.index]))
    return steps, tan


# ---------------------------------------------------------------------------------------------
# Counting sweeps: the cost of a full Jacobian in each mode
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepCount:
    """How much work one Jacobian took: sweeps over the tape and entries visited (local rules applied)."""
    mode: str
    n_inputs: int
    n_outputs: int
    sweeps: int
    visits: int

    def __str__(self) -> str:
        return (f"{self.mode} mode: {self.sweeps} sweep{'s' * (self.sweeps != 1)}, {self.visits} local rules applied "
                f"for a {self.n_outputs}×{self.n_inputs} Jacobian")


def jacobian(tape: Tape, mode: str = "reverse") -> tuple[np.ndarray, SweepCount]:
    """The full Jacobian ∂output/∂inputs (inputs flattened and concatenated) and what it cost.

    Forward mode needs one sweep per input element (n), reverse mode one per output element (m).
    """
    sizes = [tape[i].value.size for i in tape.inputs]
    n, m = sum(sizes), tape.value.size
    J = np.zeros((m, n))
    visits = 0
    if mode == "forward":
        for k in range(n):
            seed = np.zeros(n)
            seed[k] = 1.0
            parts = np.split(seed, np.cumsum(sizes)[:-1])
            steps, tan = forward_sweep(tape, [p.reshape(tape[i].value.shape) for p, i in zip(parts, tape.inputs)])
            visits += len(steps)
            col = tan.get(tape.output)
            J[:, k] = 0.0 if col is None else np.broadcast_to(col, tape.value.shape).reshape(-1)
        return J, SweepCount("forward", n, m, n, visits)
    if mode == "reverse":
        for j in range(m):
            seed = np.zeros(m)
            seed[j] = 1.0
            steps, adjoint = reverse_sweep(tape, seed.reshape(tape.value.shape))
            visits += len(steps)
            J[j] = np.concatenate([np.broadcast_to(adjoint.get(i, 0.0), tape[i].value.shape).reshape(-1)
                                   for i in tape.inputs])
        return J, SweepCount("reverse", n, m, m, visits)
    raise ValueError(f"jacobian: mode must be 'forward' or 'reverse', got {mode!r}")


# ---------------------------------------------------------------------------------------------
# Worked examples
# ---------------------------------------------------------------------------------------------
def course_f(x1, x2):
    """The lecture's example f(x₁, x₂) = ln x₁ + x₁x₂ − sin x₂ (ZOMI, 05Framework/02AutoDiff).
    At (2, 5): f = 11.652071455223084, ∂f/∂x₁ = 1/x₁ + x₂ = 5.5, ∂f/∂x₂ = x₁ − cos x₂ = 1.7163378145367738."""
    from .ops import log, sin
    v1 = log(x1)              # written in the lecture's order, so the tape numbers entries as the slides do
    v2 = x1 * x2
    v3 = sin(x2)
    v4 = v1 + v2
    return v4 - v3


COURSE_POINT = (2.0, 5.0)
COURSE_VALUE = 11.652071455223084
COURSE_GRAD = (5.5, 1.7163378145367738)

_RANDOM_OPS = ("add", "sub", "mul", "div", "sin", "cos", "tanh", "exp", "log")


def random_expression(rng: np.random.Generator, n_inputs: int = 2, n_ops: int = 8) -> Callable:
    """A random scalar expression over ``n_inputs`` inputs built from ops with dual-number rules.

    Operands are drawn from all earlier values, so values get reused (adjoints must accumulate). Domains
    are kept safe: log(v² + 1), u / (v² + 1), exp(tanh v). ``f.program`` lists the steps.
    """
    from . import ops as O
    program = []
    for k in range(n_ops):
        op = _RANDOM_OPS[int(rng.integers(len(_RANDOM_OPS)))]
        a, b = (int(i) for i in rng.integers(0, n_inputs + k, 2))
        program.append((op, a, b))

    def f(*xs):
        pool = list(xs)
        for op, a, b in program:
            x, y = pool[a], pool[b]
            if op == "add":
                v = x + y
            elif op == "sub":
                v = x - y
            elif op == "mul":
                v = x * y
            elif op == "div":
                v = x / (y * y + 1.0)
            elif op == "log":
                v = O.log(x * x + 1.0)
            elif op == "exp":
                v = O.exp(O.tanh(x))
            else:
                v = getattr(O, op)(x)
            pool.append(v)
        out = pool[-1]
        return out.sum() if out.ndim else out

    f.program = program
    return f


def central_differences(fn: Callable, inputs, eps: float = 1e-6) -> list:
    """∂fn/∂input by (f(x + h) − f(x − h)) / 2h, one input element at a time (float64)."""
    xs = [np.array(x, dtype=np.float64) for x in inputs]
    grads = []
    for k, x in enumerate(xs):
        g = np.zeros(x.shape)
        for j in np.ndindex(*x.shape):
            plus = [y.copy() for y in xs]
            minus = [y.copy() for y in xs]
            plus[k][j] += eps
            minus[k][j] -= eps
            with no_grad():
                fp = float(fn(*[Tensor._wrap(p) for p in plus]).item())
                fm = float(fn(*[Tensor._wrap(m) for m in minus]).item())
            g[j] = (fp - fm) / (2 * eps)
        grads.append(g)
    return grads


# ---------------------------------------------------------------------------------------------
# Plugging a VJP rule into the registry (exercise 2.3)
# ---------------------------------------------------------------------------------------------
def cube_vjp(g, out, x):
    """VJP of cube(x) = x³: one gradient per input, g·3x², written with tensor ops so it can itself be
    differentiated (grad-of-grad of x³ at 3 is 6·3 = 18). Exercise 2.3's reference."""
    return (g * 3.0 * x * x,)


@contextlib.contextmanager
def temporary_op(name: str, *, ref: Callable, vjp: Callable, jvp: Callable | None = None, infer: Callable | None = None,
                 cost: Callable | None = None):
    """Register an elementwise op for the duration of a ``with`` block (then remove it), e.g. to run
    autograd and gradcheck through a VJP rule you wrote. Yields the OpDef; call it with ``apply(op, x)``."""
    from .ops._common import same_spec, elementwise_cost
    from .registry import FusionKind
    if name in OPS:
        raise ValueError(f"temporary_op: an op named {name!r} is already registered at {OPS[name].source}")
    op = defop(name, infer=infer or same_spec(name, float_only=True), ref=ref, vjp=vjp, jvp=jvp,
               fusion=FusionKind.ELEMENTWISE, cost=cost or elementwise_cost(1))
    try:
        yield op
    finally:
        OPS.pop(name, None)


def cube_with_vjp(vjp: Callable, name: str = "cube_exercise"):
    """A context manager yielding ``cube(x)`` = x³ whose backward uses ``vjp`` (its JVP is the library's)."""
    return _CubeContext(vjp, name)


class _CubeContext:
    def __init__(self, vjp, name):
        self._cm = temporary_op(name, ref=lambda x: x * x * x, vjp=vjp,
                                jvp=lambda t, out, x: t[0] * 3.0 * x * x)

    def __enter__(self):
        op = self._cm.__enter__()
        return lambda x: apply(op, x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x, dtype=np.float64)))

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


__all__ = ["Entry", "Tape", "format_value", "local_vjp", "local_jvp", "reverse_grad", "ReverseStep", "reverse_sweep",
           "Dual", "DUAL_OPS", "dual_apply", "jvp_dual", "ForwardStep", "forward_sweep", "SweepCount", "jacobian",
           "course_f", "COURSE_POINT", "COURSE_VALUE", "COURSE_GRAD", "random_expression", "central_differences",
           "cube_vjp", "temporary_op", "cube_with_vjp"]
