"""Write labs/02_autodiff.ipynb (lab 02 — autodiff: forward and reverse mode) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab02.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  AISYS_LAB_SOLUTIONS=1 .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
      --ExecutePreprocessor.store_widget_state=False labs/02_autodiff.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "02_autodiff.ipynb"


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 02 — Autodiff: forward and reverse mode (自动微分：前向模式与反向模式)

Every AI framework computes gradients for you: you write the forward computation, `loss.backward()`
does the rest. This lab opens that box. You will write the two halves of automatic differentiation
(自动微分) yourself, on a tape you can print, and plug a derivative rule of your own into aisys.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `05Framework/02AutoDiff` — 02 什么是微分
(what a derivative is), 03 正反向计算模式 (forward and reverse mode), 04 三种实现方法 (three ways to
implement it), 05 手把手实现正向微分框架 and 06 亲自实现一个 PyTorch (the course's two notebooks,
`05ForwardMode.ipynb` and `06ReversedMode.ipynb`), and 07 自动微分的挑战&未来.

**Goals.** After this lab you can
- write a program as a tape (a Wengert list, 计算图的线性化) of elementary ops, and read it;
- run reverse mode (反向模式, adjoint mode) by hand: one sweep from the output back, accumulating adjoints;
- run forward mode (前向模式, tangent mode) with dual numbers (对偶数), and say when each mode is cheaper;
- explain why a framework's backward pass is itself differentiable (高阶导数, grad-of-grad).

**Exercises.** 2.1 `reverse_grad` (the reverse sweep) · 2.2 `dual_apply` (dual-number rules) ·
2.3 `cube_vjp` (a VJP rule that plugs into aisys). Each stub raises `NotImplementedError` until you
write it; the cell after it checks your function and prints PASS or what went wrong."""),
    (CODE, """\
import time

import numpy as np

import aisys
from aisys.framework.tape import (COURSE_GRAD, COURSE_VALUE, Dual, Tape, course_f, cube_with_vjp, jacobian,
                                  jvp_dual, local_vjp)
from aisys.labkit import check, exercise
from widgets.autodiff import TapePlayer

np.set_printoptions(precision=6, suppress=True)
print("ready")"""),
    (MD, """\
## 1. The tape (计算图与 Wengert 列表)

The lecture's running example is

$$f(x_1, x_2) = \\ln x_1 + x_1 x_2 - \\sin x_2 \\quad\\text{at}\\quad (x_1, x_2) = (2, 5).$$

A program evaluating it is a sequence of elementary operations. Written out one per line — inputs named
v₋₁, v₀, intermediate values v₁ … v₅, as in the lecture — that sequence is the **tape**. `Tape.record`
runs a Python function and writes down every aisys op it applies:"""),
    (CODE, """\
tape = Tape.record(course_f, 2.0, 5.0)
print(tape)
print()
print(f"f(2, 5) = {float(tape.value)!r}  (the lecture: 11.652…; exactly ln 2 + 10 − sin 5 = {COURSE_VALUE!r})")"""),
    (MD, """\
Each entry names its op and the entries it reads (`tape[3].inputs == (0, 1)`: v₂ reads v₋₁ and v₀).
The lecture's step-by-step list has a slip at step 6 — it writes v₅ = v₁ + v₂ — the tape shows the
intended v₅ = v₄ − v₃.

## 2. Reverse mode (反向模式)

Reverse mode attaches to every entry its **adjoint** v̄ᵢ = ∂y/∂vᵢ: how much the output moves per unit
change of that entry. The output's adjoint is 1 (∂y/∂y). Then each entry, visited from last to first,
passes its adjoint back to the entries it read, multiplied by the local derivative — the
**vector-Jacobian product** (VJP) of its op:

$$\\bar v_i \\mathrel{+}= \\bar v_j \\cdot \\frac{\\partial v_j}{\\partial v_i} \\quad\\text{for every entry } j \\text{ that reads } v_i.$$

The `+=` matters: x₁ feeds both ln x₁ and x₁x₂, so its adjoint is a sum over both paths —
0.5 + 5 = 5.5, as in the lecture. `local_vjp(tape, entry, adjoint)` applies one op's VJP (aisys's registry
knows every op's rule); it returns one contribution per input of the entry:"""),
    (CODE, """\
v5 = tape[6]                     # v5 = sub(v4, v3)
print(tape.line(v5), "->", local_vjp(tape, v5, 1.0))          # ∂(a − b)/∂a = 1, ∂/∂b = −1
v2 = tape[3]                     # v2 = mul(v-1, v0)
print(tape.line(v2), "->", local_vjp(tape, v2, 1.0))          # ∂(ab)/∂a = b = 5, ∂/∂b = a = 2"""),
    (MD, """\
### Exercise 2.1 — the reverse sweep (`reverse_grad`)

Write `reverse_grad(tape)`: return a list with ∂output/∂input for every entry in `tape.inputs`
(the output is a scalar). You need:

- `tape.entries` (in evaluation order), `tape.output` and `tape.inputs` (entry indices),
- each entry's `.index`, `.inputs` (indices it reads), `.is_leaf` (inputs and constants: no op to undo),
  `.value` (its forward value, a numpy array),
- `local_vjp(tape, entry, adjoint)` → one contribution (array or `None`) per index in `entry.inputs`.

Seed the output with `np.ones_like(...)`; inputs the output does not depend on get zeros.
The check uses the lecture's example, three random expressions (against central differences
(f(x+h) − f(x−h))/2h), a vector input, and an unused input."""),
    (CODE, """\
@exercise("2.1")
def reverse_grad(tape):
    \"\"\"Adjoints of tape.inputs for a scalar output: one reverse sweep over tape.entries.\"\"\"
    raise NotImplementedError("exercise 2.1: seed the output with 1, sweep the entries backwards, "
                              "add local_vjp contributions into the inputs' adjoints")"""),
    (EXERCISE_DEPENDENT, """\
check("2.1", reverse_grad)"""),
    (EXERCISE_DEPENDENT, """\
x1 = aisys.tensor(2.0, dtype=aisys.float64, requires_grad=True)
x2 = aisys.tensor(5.0, dtype=aisys.float64, requires_grad=True)
course_f(x1, x2).backward()                     # aisys's own reverse mode, on its implicit tape
print("your reverse_grad:", [float(g) for g in reverse_grad(tape)])
print("aisys backward:   ", [x1.grad.item(), x2.grad.item()])
print("the lecture:      ", list(COURSE_GRAD))"""),
    (MD, """\
### The visual moment: scrub backwards through the tape

Each node shows an entry's value; drag the slider (or press ▶) and the reverse sweep runs one entry per
step. The entry being processed turns yellow, the adjoints it sends back appear in red on the edges
(`+1`, `−0.2837` …), and a node shows its adjoint v̄ once something has reached it. Watch v₀ = x₂ collect
two contributions: −cos 5 = −0.2837 through sin, then +2 through the product. Switch to
*forward: tangents* to see the other mode."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
player = TapePlayer(course_f, 2.0, 5.0)
player"""),
    (CODE, """\
player.slider.value = 3          # what dragging the slider to step 3 does
print(player.summary())"""),
    (MD, """\
## 3. Forward mode with dual numbers (前向模式与对偶数)

Forward mode carries, next to every value vᵢ, its **tangent** v̇ᵢ = ∂vᵢ/∂x for one chosen input direction,
and computes both in the same forward sweep. The pair behaves like a **dual number** v + v̇ε with ε² = 0:

$$(a + \\dot a\\varepsilon)(b + \\dot b\\varepsilon) = ab + (\\dot a b + a\\dot b)\\varepsilon, \\qquad
\\sin(a + \\dot a\\varepsilon) = \\sin a + \\cos a\\,\\dot a\\,\\varepsilon .$$

Seeding ẋ₁ = 1, ẋ₂ = 0 gives ∂f/∂x₁ at the output; seeding (0, 1) gives ∂f/∂x₂. `jvp_dual(tape, tangents,
rule)` does the sweep; `rule(op, *duals, **attrs)` evaluates one op on `Dual(value, tangent)` pairs (by
default the library's rules, which exercise 2.2 asks you to write):"""),
    (CODE, """\
print("library rules, seed (1, 0):", jvp_dual(tape, [1.0, 0.0]))
print("library rules, seed (0, 1):", jvp_dual(tape, [0.0, 1.0]))
product = Tape.record(lambda a, b: a * b, 2.0, 5.0)
print("one product:", jvp_dual(product, [1.0, 0.0]), " <- (2+ε)(5) = 10 + 5ε")"""),
    (MD, """\
### Exercise 2.2 — dual-number rules (`dual_apply`)

Write `dual_apply(op, *args, **attrs)` for the ops `add, sub, mul, div, neg, exp, log, sin, cos, tanh, sqrt,
pow, sum`. Each `arg` is a `Dual(value, tangent)` whose fields are numpy arrays or floats; return
`Dual(value, tangent)` of the result. For `sum`, `attrs` has `dim` (None = all, or an axis) and `keepdim`;
for `pow` both the base and the exponent may carry tangents.

The check tests each rule against central differences (`sum` over all, over one axis, with and without
`keepdim`), the lecture's example, agreement with reverse mode (J·v = ∇f·v) on random expressions, and a
full Jacobian built from forward sweeps."""),
    (CODE, """\
@exercise("2.2")
def dual_apply(op, *args, **attrs):
    \"\"\"Evaluate op on dual numbers: Dual(value, tangent) in, Dual(value, tangent) out.\"\"\"
    raise NotImplementedError("exercise 2.2: one dual-number rule per op, e.g. "
                              "mul: Dual(a.value * b.value, a.tangent * b.value + a.value * b.tangent)")"""),
    (EXERCISE_DEPENDENT, """\
check("2.2", dual_apply)"""),
    (EXERCISE_DEPENDENT, """\
for seed in ([1.0, 0.0], [0.0, 1.0]):
    print(f"your rules, seed {seed}:", jvp_dual(tape, seed, rule=dual_apply))"""),
    (MD, """\
### Counting sweeps: n forward versus m reverse

A Jacobian of f: ℝⁿ → ℝᵐ has n columns and m rows. One forward sweep gives one column (J·e_k), one reverse
sweep gives one row (e_jᵀ·J). So forward mode needs **n sweeps** and reverse mode **m sweeps** (03GradMode).
A loss has m = 1 and a model has millions of weights — which is why every training framework runs
reverse mode. Here f(x) = Σᵢ tanh(xᵢ)·xᵢ with n = 1000 inputs and m = 1 output:"""),
    (CODE, """\
x = np.linspace(-1.0, 1.0, 1000)
wide_tape = Tape.record(lambda v: (aisys.tanh(v) * v).sum(), x)
J_forward, forward_cost = jacobian(wide_tape, "forward")
J_reverse, reverse_cost = jacobian(wide_tape, "reverse")
print(forward_cost)
print(reverse_cost)
print("same Jacobian:", np.allclose(J_forward, J_reverse), " shape", J_reverse.shape)"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
for mode in ("forward", "reverse"):
    start = time.perf_counter()
    jacobian(wide_tape, mode)
    print(f"{mode:8s} {1e3 * (time.perf_counter() - start):8.2f} ms")"""),
    (MD, """\
The balance flips when outputs outnumber inputs: for g: ℝ² → ℝ³ forward mode needs 2 sweeps and reverse 3.
(Forward mode also needs no tape: it keeps no intermediate values for later, the memory cost 03GradMode lists
against reverse mode.)"""),
    (CODE, """\
W = np.array([[1.0, -2.0], [0.5, 0.25], [3.0, 1.0]])
tall_tape = Tape.record(lambda v: aisys.sin(aisys.tensor(W) @ v), np.array([0.3, -0.2]))
for mode in ("forward", "reverse"):
    print(jacobian(tall_tape, mode)[1])"""),
    (MD, """\
## 4. Gradients of gradients (高阶导数)

aisys writes every op's VJP *with ops*, so when the backward pass runs with `create_graph=True` its own
computations are recorded on the tape like any other — and can be differentiated again. `aisys.grad`
does exactly that, so it nests:"""),
    (CODE, """\
cube = lambda x: x ** 3
print("d/dx   x³ at 3 =", aisys.grad(cube)(3.0).item())
print("d²/dx² x³ at 3 =", aisys.grad(aisys.grad(cube))(3.0).item())
print("d³/dx³ x³ at 3 =", aisys.grad(aisys.grad(aisys.grad(cube)))(3.0).item())"""),
    (MD, """\
Record the *gradient computation* and look at its tape: after the forward `pow`, the entries are the
VJP of pow (y·x^(y−1), times the seed 1) — ordinary ops. A reverse sweep over this tape gives the
second derivative, 6x = 18."""),
    (CODE, """\
grad_tape = Tape.record(lambda x: aisys.grad(cube)(x), 3.0)
print(grad_tape)
print()
J, cost = jacobian(grad_tape, "reverse")
print("reverse sweep over the gradient's tape:", J.ravel().tolist(), f"({cost})")"""),
    (MD, """\
### Exercise 2.3 — a VJP rule of your own (`cube_vjp`)

Give aisys a new op, `cube(x) = x³`, by writing its VJP: `cube_vjp(g, out, x)` receives the incoming
gradient `g` (same shape as the output), the forward output `out` and the input `x`, all aisys tensors,
and returns a tuple with one gradient per input: `(g · ∂out/∂x,)`.

Write it with tensor operations (`*`, `+`, …), not numpy: then the rule itself is recorded when
`create_graph=True`, and grad-of-grad works. The check registers your rule as the op's VJP for the
duration of the check, then asks for d/dx x³ at 3 (27), grad-of-grad (18) and the third derivative (6), and
runs `aisys.gradcheck(..., second_order=True)` on a random vector."""),
    (CODE, """\
@exercise("2.3")
def cube_vjp(g, out, x):
    \"\"\"VJP of cube(x) = x**3: return (gradient for x,), written with tensor ops.\"\"\"
    raise NotImplementedError("exercise 2.3: return (g * <d out / d x>,) using tensor operations")"""),
    (EXERCISE_DEPENDENT, """\
check("2.3", cube_vjp)"""),
    (MD, """\
Your rule at work: inside the `with` block aisys has an op `cube_exercise` whose backward is your
function. The tape of its gradient shows your rule's ops, and the player sweeps it to the second
derivative: scrub it and watch your rule's `mul`s pass the adjoint back to x."""),
    (EXERCISE_DEPENDENT, """\
with cube_with_vjp(cube_vjp) as my_cube:
    print("grad-of-grad with your rule:", aisys.grad(aisys.grad(my_cube))(3.0).item())
    my_grad_tape = Tape.record(lambda x: aisys.grad(my_cube)(x), 3.0)
    my_player = TapePlayer(my_grad_tape)
print(my_grad_tape)"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
my_player"""),
    (EXERCISE_DEPENDENT, """\
my_player.slider.value = my_player.slider.max
print(my_player.summary())"""),
    (MD, """\
## What to take away

- A program is a tape of elementary ops. Autodiff never differentiates a formula symbolically: it applies
  each op's local rule to recorded values (04Implement: aisys uses operator overloading, like PyTorch).
- Reverse mode: one backward sweep per output, adjoints accumulate with `+=` over every use of a value;
  it must keep the forward values (memory). Forward mode: one sweep per input direction, dual numbers, no tape.
- ℝⁿ → ℝᵐ: forward costs n sweeps, reverse m sweeps. Training has m = 1.
- If VJPs are written with ops, the backward pass is just more tape: higher-order derivatives, and
  (lab 03) a backward graph a compiler can trace and optimize.
- That generality costs a tape record per backward op. A plain `loss.backward()` that nothing records
  (no `create_graph`, no tracer) runs numpy *twins* of the hot rules instead (each op's `vjp_np`, written
  next to its `vjp` in `aisys/framework/ops/`), which tests hold bit-for-bit equal to the op-written ones —
  PyTorch's hand-written C++ derivative kernels play the same role. An op without a twin, like your `cube`, simply runs its op-written rule.

Next: lab 03 captures these tapes as graphs (tracing vs scripting); lab 05 plans the memory reverse mode
needs for its saved values."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab02")


if __name__ == "__main__":
    labcells.main(CELLS, "lab02", DEFAULT_OUT, sys.argv)
