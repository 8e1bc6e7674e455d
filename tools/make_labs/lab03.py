"""Write labs/03_graph_capture.ipynb (lab 03 — graph capture, dispatch, control flow) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab03.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  AISYS_LAB_SOLUTIONS=1 .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
      --ExecutePreprocessor.store_widget_state=False labs/03_graph_capture.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "03_graph_capture.ipynb"


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 03 — Graph capture, dispatch and control flow (计算图获取、调度与控制流)

You write a model as ordinary Python, and the framework runs it one op at a time: **eager** execution,
a *dynamic graph* (动态图) built as the program runs. A compiler wants the whole program as a **static
graph** (静态图) it can inspect, optimize and ship. This lab is about getting from the first to the second,
and what can go wrong on the way:

1. **Tracing** (基于追踪): run the program once and record every op it performs.
2. **Scripting** (基于源码解析): read the program's *source* — tokens, syntax tree, semantic checks — and
   translate it, including its `if` and `while`.
3. **Control flow as ops** (控制流): `cond` and `while_loop` hold their branches as subgraphs.
4. **Dispatch** (调度): each op in the graph finally runs as a *kernel* chosen by (op, device, dtype).

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `05Framework/01Foundation/04Programing`
(编程范式: imperative vs declarative), `05Framework/03DataFlow/02Computegraph` (计算图),
`03DataFlow/04Dispatch` (计算图的调度与执行), `03DataFlow/05ControlFlow` (计算图的控制流),
`03DataFlow/06StaticGraph` (动态图与静态图转换), and `03Compiler/06PyTorch` (TorchScript, FX, Dynamo).

**Goals.** After this lab you can
- trace a function, a module or a whole training step into one graph, and read the result;
- name the three stages of source-based conversion and the errors each one catches;
- explain why a traced graph can be *silently wrong*, and how `cond` fixes it;
- predict which kernel a dispatcher picks, and why.

**Exercises.** 3.1 `trace_program` · 3.2 `cond` · 3.3 `dispatch_order`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or
what went wrong."""),
    (CODE, """\
import numpy as np

import aisys
from aisys import nn
from aisys.framework.graph import Graph, interpret
from aisys.framework.tensor import apply
from aisys.frontend import ScriptError, script
from aisys.frontend.control_flow import capture_branches
from aisys.labkit import check, exercise
from widgets.graph import CaptureCompare, GraphView

np.set_printoptions(precision=4, suppress=True, linewidth=100)
print("ready")"""),
    (MD, """\
## 1. The dynamic graph: the tape (动态图)

In eager mode every op runs at once, and — if an input requires a gradient — leaves a record on its
output: `(op, inputs, attrs)`. Following those records back from a result gives the graph of *this run*.
It is rebuilt on every run, which is what makes eager code easy to debug and free to use Python's own
`if`, `for` and `print`. `GraphView` draws it; switch to **forward + backward** to see the ops autodiff
adds (orange): each op's vector–Jacobian product is written with ops too, so the backward pass is a graph."""),
    (CODE, """\
aisys.manual_seed(0)
W = aisys.randn(3, 4, requires_grad=True)
b = aisys.zeros(4, requires_grad=True)
x = aisys.randn(2, 3)
loss = (x @ W + b).relu().sum()
tape_view = GraphView(loss, names={"x": x, "W": W, "b": b})
print(tape_view.graph)"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
tape_view"""),
    (CODE, """\
tape_view.mode.value = "forward + backward"
print(tape_view.summary())"""),
    (MD, """\
## 2. Tracing (基于追踪)

`aisys.trace(fn, *example_inputs)` runs `fn` on the example values and watches every op it performs.
Every op goes through one function, `apply`, which calls the registered *observers* after computing the
op; `aisys.observe_ops(observer)` registers one for the length of a `with` block. The tracer is such an
observer: it keeps a map from each tensor to the graph node that computes it and adds one node per op. Tensors it has never seen become leaves: the example inputs are `input` nodes, a module's
parameters (or any trainable leaf) are `param` nodes, anything else is a `const`. Each node remembers the
user's `file:line`. This is `torch.jit.trace` and the first half of `torch.fx` — and of how the compiler
(`aisys.compile`, lab 04) gets its graph."""),
    (CODE, """\
aisys.manual_seed(0)
mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
xb = aisys.randn(4, 6)
mlp_graph = aisys.trace(mlp, xb)
print(mlp_graph)
x_new = aisys.randn(4, 6)
print("interpret(graph, a new batch) == mlp(new batch):", np.allclose(interpret(mlp_graph, x_new)[0], mlp(x_new).numpy()))"""),
    (MD, """\
### Exercise 3.1 — a tracer (`trace_program`)

Write a small tracer. The pieces you need:

- `Graph("name")`, `graph.add_input(name, shape, dtype)`, `graph.add_param(name, value)`,
  `graph.add_const(value)`, `graph.add(op_name, input_ids, attrs, shape=..., dtype=...)`, each returning a node
  with an `.id`; `graph.set_outputs([ids])`.
- An observer is a function `observer(op, inputs, attrs, out)`; inside `with aisys.observe_ops(observer):` it
  is called after every op (`op.name` is the op's name, `inputs` and `out` are tensors, `attrs` a dict).
- Keep a map from tensor to node id: a dict keyed by `id(tensor)` (keep the tensors alive in a list, so no id
  is reused while you trace). A tensor you meet for the first time is a leaf: `param` if it is a trainable
  leaf (`t.requires_grad and t.is_leaf`), else `const` holding a copy of its value (`np.array(t.numpy())`).

Steps: make the graph; give `fn` fresh tensors for the example inputs (`x.detach()`: same values, a new
tensor) and register each as an input node; call `fn` inside `with aisys.observe_ops(observer):`; set the
output to the node of the tensor `fn` returned — not necessarily the last op it ran. (Calling `aisys.trace`
does not count: the check notices.)"""),
    (CODE, """\
@exercise("3.1")
def trace_program(fn, *example_inputs):
    \"\"\"Run fn once on copies of example_inputs and return the Graph of the ops it performed.\"\"\"
    raise NotImplementedError("exercise 3.1: record every op fn performs into a Graph (aisys.observe_ops)")"""),
    (EXERCISE_DEPENDENT, """\
check("3.1", trace_program)"""),
    (EXERCISE_DEPENDENT, """\
def layer(x):
    return (x @ W + b).tanh()

print(trace_program(layer, aisys.randn(2, 3)))"""),
    (MD, """\
### A whole training step is one graph

The backward pass runs through `apply` too (every VJP is made of ops), and optimizers update parameters
with `p.assign_(new)`, which the tracer also sees (`on_assign`). So tracing one *training step* gives one
**joint graph** — forward, backward (written by autodiff) and the update — whose outputs include each
parameter's new value (`graph.updates`). Tracing is a dry run: the parameters and the optimizer are left as
they were. Interpreting the graph reproduces the eager step exactly. This joint graph is what the memory
planner (lab 05) and the compiler work on."""),
    (CODE, """\
opt = aisys.optim.SGD(mlp.parameters(), lr=0.1)
yb = aisys.randint(0, 3, (4,))

def train_step(x, y):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(mlp(x), y)
    loss.backward()
    opt.step()
    return loss

step_graph = aisys.trace(train_step, xb, yb)
print(step_graph.summary())
print("updates:", {name: f"%{i}" for name, i in step_graph.updates.items()})
outs = interpret(step_graph, xb, yb)
train_step(xb, yb)                                     # the real, eager step
same = all(np.allclose(outs[step_graph.outputs.index(step_graph.updates[k])], p.numpy(), atol=1e-6)
           for k, p in mlp.named_parameters())
print("the graph's parameter updates equal the eager step:", same)"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
loss_node = step_graph.returns[0]
GraphView(step_graph, highlight={i: "backward" for i in step_graph.nodes if i > loss_node}, rankdir="LR",
          show_attrs=False)"""),
    (MD, """\
## 3. Where tracing breaks: a branch on a tensor

The lecture 06StaticGraph uses an RNN cell whose update depends on the data: the input term is added only
if the hidden pre-activation is "large". (The lecture's code compares `h2h > w_x`, a (20, 1) against a
(20, 10) tensor: they broadcast to a 20×10 boolean whose truth value is ambiguous, so PyTorch raises. We
reduce it to one number, `h2h.sum() > 0`.)

A tracer does not see the `if`. It sees `bool(tensor)` — one value, for one input — and records only the
branch that value chose. aisys's tracer notices the `bool` and attaches a warning to the graph, but the graph
itself will take the same branch for every input, **silently**."""),
    (CODE, """\
rng = np.random.default_rng(3)
W_h = aisys.tensor(rng.standard_normal((4, 4)).astype(np.float32))
W_x = aisys.tensor(rng.standard_normal((4, 3)).astype(np.float32))

def rnn_cell(x, prev_h):
    h2h = W_h @ prev_h.T
    if h2h.sum() > 0:
        i2h = W_x @ x.T
        h2h = h2h + i2h
    next_h = h2h.tanh()
    return next_h

x1 = aisys.tensor(rng.standard_normal((1, 3)).astype(np.float32))
h_pos = aisys.tensor(np.array([[-0.9, 0.2, -0.4, -0.3]], np.float32))
h_neg = aisys.tensor(-h_pos.numpy())
print("h2h.sum() for prev_h:", (W_h @ h_pos.T).sum().item(), " for -prev_h:", (W_h @ h_neg.T).sum().item())

traced_cell = aisys.trace(rnn_cell, x1, h_pos)
print(traced_cell)
print("warning:", traced_cell.warnings[0])"""),
    (CODE, """\
for name, h in (("prev_h", h_pos), ("-prev_h", h_neg)):
    eager = rnn_cell(x1, h).numpy().ravel()
    traced = interpret(traced_cell, x1, h)[0].ravel()
    print(f"{name:8s} eager {eager}   traced {traced}   same: {np.allclose(eager, traced)}")"""),
    (MD, """\
## 4. Scripting: compiling the source (基于源码解析)

The other way in reads the program instead of running it. `aisys.script` follows the lecture's three stages:

1. **Lexing** (词法分析): the source becomes tokens (Python's `tokenize`).
2. **Parsing** (语法分析): the tokens become a syntax tree (Python's `ast`).
3. **Semantic analysis** (语义分析) and **lowering**: every name is resolved (parameter, local, global
   tensor, module, builtin), unsupported constructs are rejected, and every value's shape and dtype is inferred
   through the op registry (类型推导). Python values — numbers, shapes, `for i in range(3)` — are evaluated at
   compile time (constant folding, loop unrolling); tensor expressions become graph nodes; and an `if` or
   `while` whose condition is a **tensor** becomes a `cond` or `while_loop` op holding its branches as
   subgraphs. Errors name your `file:line`."""),
    (CODE, """\
print(script.format_tokens(script.tokens(rnn_cell), 16))"""),
    (CODE, """\
tree = script.dump(rnn_cell).splitlines()
print("\\n".join(tree[:24]))
print(f"… ({len(tree)} lines)")"""),
    (CODE, """\
print(script.check(rnn_cell, x1, h_pos))"""),
    (CODE, """\
scripted_cell = script(rnn_cell, x1, h_pos)
print(scripted_cell.graph)
cond_node = next(n for n in scripted_cell.graph.op_nodes if n.op == "cond")
print("\\nthen-branch:", cond_node.attrs["then_graph"])
print("else-branch:", cond_node.attrs["else_graph"])"""),
    (MD, """\
The semantic pass is also where programs are *rejected*, with the line to fix. A few mistakes a tracer
would either miss or report deep inside a library:"""),
    (CODE, """\
def typo(x, prev_h):
    return W_h @ prev_h.T + W_X @ x.T

def mismatched(x, prev_h):
    return (W_x @ prev_h.T).tanh()

def disagreeing_branches(x, prev_h):
    h = W_h @ prev_h.T
    if h.sum() > 0:
        h = h.T
    return h

for bad in (typo, mismatched, disagreeing_branches):
    try:
        script(bad, x1, h_pos)
    except ScriptError as err:
        print(err, "\\n")"""),
    (MD, """\
### Exercise 3.2 — `cond`: both branches in the graph

The scripted graph stays right because its `cond` op holds **both** branches and picks one *when it runs*.
`cond` is also an ordinary function (like `torch.cond` or `jax.lax.cond`), so you can write it yourself:

    cond(pred, true_fn, false_fn, operands)  →  true_fn(*operands) if pred else false_fn(*operands)

— but recorded as **one op**, so that a trace keeps both branches. The helper
`aisys.frontend.control_flow.capture_branches(true_fn, false_fn, operands)` traces each function into its own
graph and returns `(then_graph, else_graph, captured)`: `captured` lists tensors the branches read from outside
(a weight in a closure), which the op must receive after the operands. Emit the op with
`apply("cond", pred, *operands, *captured, then_graph=..., else_graph=...)`. Resist `if pred:` — why? The check
also uses branches that read a trainable weight, and differentiates through your op."""),
    (CODE, """\
@exercise("3.2")
def cond(pred, true_fn, false_fn, operands=()):
    \"\"\"true_fn(*operands) if pred else false_fn(*operands), recorded as one cond op holding both branches.\"\"\"
    raise NotImplementedError("exercise 3.2: capture both branches as graphs and emit one 'cond' op")"""),
    (EXERCISE_DEPENDENT, """\
check("3.2", cond)"""),
    (EXERCISE_DEPENDENT, """\
def rnn_cell_with_cond(x, prev_h):
    h2h = W_h @ prev_h.T
    h2h = cond(h2h.sum() > 0, lambda h2h, x: h2h + W_x @ x.T, lambda h2h, x: h2h, (h2h, x))
    return h2h.tanh()

traced_with_cond = aisys.trace(rnn_cell_with_cond, x1, h_pos)
print(traced_with_cond.count_ops(), "warnings:", traced_with_cond.warnings)
for name, h in (("prev_h", h_pos), ("-prev_h", h_neg)):
    print(f"{name:8s} right: {np.allclose(interpret(traced_with_cond, x1, h)[0], rnn_cell(x1, h).numpy())}")"""),
    (MD, """\
Your `cond` in the traced graph: the hexagon is your op, and its two branches hang beside it as dashed
clusters — the input term `W_x @ x.T` in the then-branch, nothing in the else-branch. Both travel with the
graph, which is why it stays right for `-prev_h`."""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
GraphView(traced_with_cond, show_attrs=False)"""),
    (MD, """\
### The visual moment: flip the sign

Three panes, one function. **Eager** shows the tape of the run you pick (rebuilt every run: notice the input
term's `matmul` and `add` disappear when the branch is skipped). **Traced** and **scripted** show the graphs captured *once*, from
`prev_h`. Pick `-prev_h` in the dropdown: the eager tape changes, the scripted graph still gives the eager
answer (green) — and the traced graph, with no error and no exception, still adds the input term, and gives a
different answer (red)."""),
    (CODE, """\
compare = CaptureCompare(rnn_cell, [x1, h_pos], {"prev_h": [x1, h_pos], "-prev_h": [x1, h_neg]})
print(compare.summary())"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
compare"""),
    (CODE, """\
compare.picker.value = "-prev_h"          # what the dropdown does
print(compare.summary())
compare.picker.value = "prev_h"           # back, so that you can flip it yourself above"""),
    (MD, """\
## 5. Dynamic and static, unified (动静统一)

The goal the lecture names is *unification*: write eager code, and get the same results from its graph
forms. Here are the three forms of two models on the same inputs. The MLP has no data-dependent control flow,
so all three agree; the RNN cell shows the one place tracing cannot follow."""),
    (CODE, """\
def three_forms(fn, example, inputs):
    traced = interpret(aisys.trace(fn, *example), *inputs)[0]
    scripted = script(fn, *example)(*inputs).numpy()
    eager = fn(*inputs).numpy()
    return np.allclose(traced, eager, atol=1e-6), np.allclose(scripted, eager, atol=1e-6)

rows = [("MLP, new batch", mlp.forward, [xb], [x_new]),
        ("RNN cell, prev_h", rnn_cell, [x1, h_pos], [x1, h_pos]),
        ("RNN cell, -prev_h", rnn_cell, [x1, h_pos], [x1, h_neg])]
print(f"{'model and input':20s} {'traced == eager':>16s} {'scripted == eager':>18s}")
for name, fn, example, inputs in rows:
    t_ok, s_ok = three_forms(fn, example, inputs)
    print(f"{name:20s} {str(t_ok):>16s} {str(s_ok):>18s}")"""),
    (MD, """\
## 6. Dispatch: from op to kernel (调度)

A graph node says *what* to compute (`matmul`); a **kernel** says *how*, for one device and one dtype. The
lecture 04Dispatch describes PyTorch dispatching twice: first on the tensor's device (and layout), then on its
dtype. Real kernel libraries are sparse — an NPU may only have a bf16 cube matmul — so a dispatcher has a
**fallback order**: for each device in (requested device, its fallback device, …), try the exact dtype, then
a kernel that takes any dtype, then wider dtypes (compute bf16 in f32 and round back); last of all, the
op registry's numpy reference, which always exists. This is not a side show: every eager op in aisys goes
through `aisys.framework.dispatch.DISPATCHER` (an op with no registered kernel runs its reference straight
away). Here is the lab's own kernel set, a separate `Dispatcher`, and how requests resolve:"""),
    (CODE, """\
from aisys.framework.dispatch import DISPATCHER, demo_dispatcher

kernels = demo_dispatcher()
print("registered kernels:", sorted(f"{op}@{dev}/{dt}" for op, dev, dt, layout in kernels.kernels))
print()
print(kernels.table(["matmul", "relu"], ["cpu", "npu"], ["float32", "bfloat16"]))"""),
    (MD, """\
### Exercise 3.3 — the fallback order (`dispatch_order`)

Return the list of `(device, dtype)` keys a dispatcher should try, best first:

    for each device d in the device chain  (device, device_fallback[device], …):
        (d, dtype)                            the exact kernel
        (d, "*")                              a kernel for any dtype on d
        (d, w) for each wider dtype w         (dtype_fallback[dtype], dtype_fallback[that], …)
    ("*", "*")                                the reference

A chain stops when the table has no entry (or would repeat). The check compares your order and the whole
resolution table of the lab's dispatcher running on your order."""),
    (CODE, """\
@exercise("3.3")
def dispatch_order(device, dtype, *, device_fallback, dtype_fallback):
    \"\"\"The (device, dtype) kernel keys to try, best first, ending with ("*", "*").\"\"\"
    raise NotImplementedError("exercise 3.3: walk the device chain; per device: exact, '*', wider dtypes; then ('*', '*')")"""),
    (EXERCISE_DEPENDENT, """\
check("3.3", dispatch_order)"""),
    (EXERCISE_DEPENDENT, """\
mine = demo_dispatcher(order=dispatch_order)
print(mine.table(["matmul", "add"], ["npu"], ["bfloat16", "int8"]))
a = aisys.randn(2, 3).bfloat16()
print("\\nmatmul on the npu in bf16 ->", mine.resolve("matmul", "npu", "bfloat16").kernel_name, "\\n", aisys.tensor(mine("matmul", a, a.T, device="npu")))"""),
    (MD, """\
Your order also drives aisys itself. Below, the library's dispatcher gets one CPU float32 matmul kernel and
your `dispatch_order`; an ordinary eager `a @ a.T` on bfloat16 tensors (eager tensors live on the `cpu`) then
finds no bf16 kernel, walks your order to `(cpu, float32)`, computes there and rounds back to bf16. The
kernel goes away at the end of the `with` block, and the op runs its numpy reference again."""),
    (EXERCISE_DEPENDENT, """\
with DISPATCHER.registered("matmul", np.matmul, "cpu", "float32", name="cpu_sgemm"), \\
        DISPATCHER.using_order(dispatch_order), DISPATCHER.recording() as log:
    y = a @ a.T
print("eager a @ a.T:", *log, sep="\\n  ")
print("result dtype:", y.dtype, "| afterwards:", DISPATCHER.resolve("matmul", "cpu", "bfloat16"))"""),
    (MD, """\
## What to take away

- **Eager** builds a new graph every run (the tape); **static** graphs are captured once and then optimized.
- **Tracing** is exact for straight-line code and reuses everything (modules, optimizers, autodiff: a whole
  training step is one joint graph) — but it records *values*, so a Python `if` on a tensor is baked in,
  silently. Watch for the "branch baked" warning.
- **Scripting** reads the source: tokens → syntax tree → semantic pass (names, supported constructs, types;
  errors with file:line) → graph, where a tensor `if` becomes `cond` and a tensor `while` becomes `while_loop`.
  The price: only a subset of Python is accepted.
- Frameworks mix the two (动静统一): trace the straight-line parts, keep control flow as ops (`torch.cond`,
  `aisys.frontend.cond`), and fall back to Python where neither works (Dynamo's graph breaks).
- **Dispatch** maps each op to a kernel by (op, device, dtype), falling back device by device and dtype by
  dtype down to a reference.

Next: lab 04 runs optimization passes on these graphs; lab 05 plans the memory of the joint training graph."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab03")


if __name__ == "__main__":
    labcells.main(CELLS, "lab03", DEFAULT_OUT, sys.argv)
