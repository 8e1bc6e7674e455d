"""Write labs/04_graph_passes.ipynb (lab 04 — graph optimization passes and model conversion) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab04.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  AISYS_LAB_SOLUTIONS=1 .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
      --ExecutePreprocessor.store_widget_state=False labs/04_graph_passes.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "04_graph_passes.ipynb"


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 04 — Graph optimization passes and model conversion (图优化与模型转换)

A model arrives at an inference engine or an AI compiler as a computation graph (计算图). Before a single
kernel runs, a series of **passes** rewrites that graph: each pass looks for a pattern, proves a rewrite
keeps the values, and applies it. Fewer nodes means fewer kernel launches; fused nodes mean intermediates
that never travel to memory. This lab builds the passes of a graph compiler's front end and watches a
ResNet block shrink under them.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `03Compiler/03Frontend` — 02GraphIR,
03OPFusion (算子融合), 07ConstantFold (常量折叠), 08CSE (公共子表达式消除), 09DCE (死代码消除),
10Algebraic (代数化简), 11 pass ordering; `04Inference/04Converter` (模型转换) and
`04Inference/05Optimize/02Basic, 03Extend` (离线图优化: Conv+BN folding, redundant nodes, layout).
Models come in and go out as real ONNX files (the `onnx` package), checked against onnxruntime.
The ResNet basic block is from He et al., *Deep Residual Learning for Image Recognition* (2016); the
fusion classes (injective / reduction / complex-out-fusable / opaque) are TVM's (Chen et al., 2018).

**Goals.** After this lab you can
- convert a real ONNX model into a graph IR, read the converter's log, and say what it drops on the way;
- export a model of your own to ONNX, check it against an independent engine, and bring a model made
  elsewhere (PyTorch) through the passes onto the simulated chip;
- write a pass against a rewriter API, so that every change is logged with the rule that made it;
- implement constant folding, CSE with a value-numbering hash table, and derive Conv+BN folding, and know
  the traps (impure ops, size caps, constants keyed by value, non-commutative ops, NaN semantics, the conv
  bias);
- read a fusion decision log — which producer joined which group and why the others did not;
- measure a pass by kernel launches and bytes moved, and watch the numbers fall pass by pass.

**Exercises.** 4.1 `fold_constants` · 4.2 `cse` · 4.3 `fold_conv_bn_weights` · 4.4 `gemm_to_registry`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or
what went wrong. Your passes then run inside the library's pass manager, and the PassStepper at the end
shows *your* rewrites."""),
    (CODE, """\
import os
import tempfile

import numpy as np

import aisys
from aisys.compiler import (Fixpoint, dce, default_pipeline, fold_conv_bn, fuse, make_fold_conv_bn, run_pass,
                            run_passes, simplify)
import aisys.onnx
from aisys.frontend.onnx.examples import gemm_mlp, resnet_block
from aisys.compiler.passes.simplify import SIMPLIFY_RULES
from aisys.compiler.testing import random_inputs
from aisys.framework.graph import interpret
from aisys.labkit import check, exercise
from aisys.labkit.checks.lab04 import course_snippet_fold, golden_cse_graph, golden_fold_graph
from widgets.passes import PassStepper

print("ready")"""),
    (MD, """\
## 1. Model conversion (模型转换)

Training frameworks export models in an exchange format, and ONNX is the ecosystem's: a protobuf
`ModelProto` holding a graph of nodes — each an operator type (`Conv`, `Gemm`, `Relu` …) naming its input
and output tensors, with attributes — plus *initializers* holding the weights, and the *opset* saying
which version of each operator is meant. The converter (`aisys.onnx.load`) maps every node onto the
engine's own ops (here: the aisys op registry) — sometimes one op, sometimes several (`Gemm` is a
transpose, a matmul, a scale and an add), sometimes none: `Identity`, and `Dropout` (in eval mode it
passes its input through). Anything it cannot map exactly — an operator, an attribute value, a type — is
refused with an error naming the node, never converted into a wrong graph, and every converted value's
shape is checked against ONNX's own shape inference.

Our model is a ResNet basic block in eval mode — Conv → BatchNorm → ReLU → Conv → BatchNorm → (+x) →
ReLU — built with `onnx.helper` the way exporters often write it, with leftovers every pass below will find."""),
    (CODE, """\
model = resnet_block(channels=4, size=8, seed=0)          # an onnx.ModelProto
for node in model.graph.node[:4]:
    print(f"{node.op_type:18s} {list(node.input)} -> {list(node.output)}")
print("...")
print(len(model.graph.node), "ONNX nodes,", len(model.graph.initializer), "initializers, opset",
      model.opset_import[0].version, "| outputs:", [o.name for o in model.graph.output])"""),
    (CODE, """\
block = aisys.onnx.load(model)
print("\\n".join(block.conversion_log))
print()
print(block)"""),
    (MD, """\
Every node `%i` has a stable id, an op from the registry, attributes, and an inferred type
(`f32[1,4,8,8]`). Ids are never reused: a node keeps its id from pass to pass, which is how the widgets
below keep each node in the same place on screen. Let us keep one input and the reference outputs to
compare against after every optimization."""),
    (CODE, """\
x = random_inputs(block, seed=0)
reference = interpret(block, *x)
print("outputs:", [r.shape for r in reference], " mean of y:", round(float(reference[0].mean()), 4))"""),
    (MD, """\
## 2. Passes, the rewriter, and the pass log

A **pass** here is a function `pass_fn(rw)`. `rw` is a `Rewriter` around a private copy of the graph;
the pass changes the graph only through it:

| call | what it does |
|---|---|
| `rw.graph` | the graph (read it freely: `rw.graph.nodes` is in topological order) |
| `rw.add(op, inputs, attrs)` / `rw.add_const(value)` | stage a new node (shape and dtype inferred) |
| `rw.replace(old_id, new_id, rule=...)` | point every reader of `old` at `new`, delete `old` and whatever only fed it |
| `rw.remove(ids, rule=...)` | delete dead nodes |
| `rw.reject(candidate, reason, rule=...)` | log a candidate you turned down, and why |

The pass manager runs the pass, re-sorts the graph, runs the **verifier** (`graph.verify()`: every input
defined before use, every type what the registry infers), and records a `PassResult`: the graph before
and after, the rewrites (rule, removed, added, the rule's file:line), the decisions and the metrics.
Dead-code elimination (死代码消除) is the simplest pass: keep what the outputs depend on."""),
    (CODE, """\
res = run_pass(dce, block)
print(res.summary(locations=False))
print("metrics before:", res.metrics_before)
print("metrics after: ", res.metrics)
saved = res.metrics_before.bytes_moved - res.metrics.bytes_moved
print(f"saved: {res.metrics_before.kernels - res.metrics.kernels} kernel(s), {saved:,} bytes moved")"""),
    (MD, """\
The metrics come from the op registry's `cost()`: **kernels** counts op nodes that launch work (a
reshape of a contiguous tensor is a free view), **bytes moved** adds up every kernel's reads and writes.
The unused `sigmoid` (an auxiliary head nobody reads) is gone, and with it the kernel and the bytes
printed on the last line.

## 3. Constant folding (常量折叠)

If every input of an op is a constant, the compiler can run the op *now* and store the result: the
exporter's `scale = 2 × 0.5` needs no kernel at inference time. Three traps:

- **impure ops** (dropout draws a random mask each run) must not be folded — the registry marks them
  `pure=False`;
- **size**: folding `exp(zeros(300, 300))` stores 90 000 numbers in the model file instead of computing
  them; a cap (`max_elements`) keeps such nodes;
- **parameters** are not constants: training updates them. An inference graph whose weights are frozen
  may fold them too (`fold_params=True`).

### Exercise 4.1 — `fold_constants`

Write the pass. Visit the nodes in topological order (`list(rw.graph.nodes.values())`); for each op node
whose inputs are all `const` nodes (or also `param` nodes when `fold_params=True`), that is pure
(`aisys.get_op(node.op).pure`) and has at most `max_elements` elements, compute its value with
`aisys.framework.graph.evaluate_node(node, [input values])`, add it with `rw.add_const(value)` and
`rw.replace(node.id, const.id, rule="fold_constants")`. Log what you skip with `rw.reject`. The check
runs your pass and then DCE on this golden graph (with the default options, with a small `max_elements`
and with `fold_params=True`), and on random graphs:"""),
    (CODE, """\
golden = golden_fold_graph()
print(golden)"""),
    (CODE, """\
@exercise("4.1")
def fold_constants(rw, max_elements=65536, fold_params=False):
    \"\"\"Replace every pure op whose inputs are all constants by a constant (at most max_elements).\"\"\"
    raise NotImplementedError("exercise 4.1: evaluate all-constant nodes and rw.replace them by constants")"""),
    (EXERCISE_DEPENDENT, """\
check("4.1", fold_constants)"""),
    (EXERCISE_DEPENDENT, """\
log = run_passes(golden, [fold_constants, dce])
print(log[0].summary(locations=False))
print(log.graph)"""),
    (MD, """\
## 4. Algebraic simplification (代数化简)

A rule table of local identities, applied until nothing changes (a fixpoint). Each rule keeps the
node's shape and dtype — `x + 0` where the zero would broadcast `x` to a bigger shape stays."""),
    (CODE, """\
for r in SIMPLIFY_RULES:
    print(f"{r.name:16s} {r.doc}")"""),
    (MD, """\
Two rules are only exact for integers. In IEEE-754 floating point, NaN·0 = NaN and inf·0 = NaN, and
inf − inf = NaN, so `x·0 → 0` and `x − x → 0` would turn a NaN (or an infinity) into a silent zero. The
pass rejects them for floats — and says why — unless you promise finite values (`assume_finite=True`,
the graph-level cousin of a fast-math flag):"""),
    (CODE, """\
from aisys.framework.graph import Graph
g = Graph("ieee")
v = g.add_input("v", (3,))
zero = g.add_const(np.float32(0.0))
g.set_outputs([g.add("mul", (v.id, zero.id)).id])
r = run_pass(simplify, g)
print(r.rejected[0])
with np.errstate(invalid="ignore"):
    print("interpreted:", interpret(g, np.array([1.0, np.inf, np.nan], np.float32))[0], "— not all zeros")"""),
    (MD, """\
On the converted block, after folding `2 × 0.5` into `1.0`, simplify removes the multiply by one and the
transpose pair the exporter left behind (`permute` then its inverse — a "double transpose"):"""),
    (CODE, """\
log = run_passes(block, ["fold_constants", "simplify"])     # the library's passes, by name
for r in log:
    print(r.summary(locations=False))
    print()"""),
    (MD, """\
## 5. Common-subexpression elimination (公共子表达式消除)

The lecture's method is a hash table: walk the graph in topological order and key each node by
**(op, inputs, attrs)**. The first node with a key is kept; a later node with the same key computes the
same value, so its readers are pointed at the first one. Because readers are re-pointed at once,
duplicates of duplicates collapse in the same sweep. Care is needed with:

- **constants** have no inputs and no attrs: key a `const` node by its *value* (dtype, shape and the
  bytes of `node.value`), so two 2.0s become one and a 2.0 never meets a 3.0;
- **operand order**: `sub(a, b)` and `sub(b, a)` are different values; sorting the inputs is only
  right for commutative ops (add, mul, maximum, minimum, eq, ne) — and optional even there;
- **impure ops**: two dropouts with equal inputs are two random draws — never merge them;
- **attrs that are arrays** (an index list): compare them by value (bytes), not by their printed form —
  numpy abbreviates long arrays, so two different index arrays can print the same;
- the result must not depend on the order the nodes happen to be listed in.

### Exercise 4.2 — `cse`

Write the pass with a dict from key to node id. Turn attrs into a hashable key (tuples of
`(name, value)`, numpy arrays as `(dtype, shape, bytes)`); never merge `input` or `param` nodes or impure
ops. The check starts with constants and operand order (x·2, x·2, x·3, x − eˣ, eˣ − x), then uses this
golden graph, shuffled node orders and random graphs:"""),
    (CODE, """\
print(golden_cse_graph())"""),
    (CODE, """\
@exercise("4.2")
def cse(rw):
    \"\"\"Merge nodes with the same (op, inputs, attrs) into the first one (never impure ops).\"\"\"
    raise NotImplementedError("exercise 4.2: key each node by (op, inputs, attrs) in a dict, rw.replace repeats")"""),
    (EXERCISE_DEPENDENT, """\
check("4.2", cse)"""),
    (MD, """\
In the block, the exporter wrote the final ReLU twice (once per output): CSE keeps one."""),
    (CODE, """\
r = run_passes(block, ["cse"])[0]
print(r.summary(locations=False))"""),
    (MD, """\
## 6. Folding BatchNorm into the convolution (Conv+BN 融合)

In eval mode, batch norm uses fixed statistics: for each channel c it computes
y = γ_c·(x − μ_c)/√(σ_c²+ε) + β_c, with γ = `bn.weight`, β = `bn.bias`, μ and σ² the running mean and
variance. Its input here is a convolution's output, x = W∗in + b: every output channel c of the conv is
a sum of its filter W[c] times a window of the input, plus its bias b_c. Both maps are linear in `in`,
so their composition is one convolution: `batch_norm(conv(in, W, b))` becomes `conv(in, W′, b′)` — one
kernel instead of two, and no extra pass over the activations. Finding W′ and b′ is exercise 4.3: write
the BN of channel c as a scale and a shift, and push them into the conv.

The course's code for this (`04Inference/05Optimize/02Basic.md`, `fuse_conv_bn`) reads
`beta = bn.weight` and `gamma = bn.bias` — γ and β are swapped (in PyTorch, `bn.weight` is γ) — and its
new bias leaves out the conv's own bias b. Transcribed, it fails the comparison with the unfused graph:"""),
    (CODE, """\
from aisys.labkit.checks.lab04 import conv_bn_graph
g = conv_bn_graph(seed=0, bias=True)
xs = random_inputs(g, seed=0)
for name, p in [("library fold_conv_bn", fold_conv_bn), ("course snippet", make_fold_conv_bn(course_snippet_fold))]:
    folded = run_pass(p, g).graph
    err = np.max(np.abs(interpret(folded, *xs)[0] - interpret(g, *xs)[0]))
    verdict = "below 1e-5: ok" if err <= 1e-5 else f"{err:.1f}: WRONG"     # float32 round-off varies by CPU
    print(f"{name:22s} max |error| vs conv→batch_norm = {verdict}")"""),
    (MD, """\
### Exercise 4.3 — derive `fold_conv_bn_weights`

Return `(W′, b′)` from the conv weight `(O, C/groups, KH, KW)`, its bias `(O,)` or `None`, and the BN's
γ, β, μ, σ² (all `(O,)`) and ε, such that `conv(x, W′, b′)` equals `batch_norm(conv(x, W, b))` for every
input x. Derive them on paper first: which axis of W does channel c's scale touch, and where does the
conv's bias go? Compute in float64 if you like and return the weight's dtype. The check starts with a
two-channel example you can follow by hand, then plugs your function into the library's pass
(`make_fold_conv_bn(your_fn)`) and compares the folded graph with the unfused one to 1e-5 on six blocks
(with and without conv bias, grouped, strided)."""),
    (CODE, """\
@exercise("4.3")
def fold_conv_bn_weights(weight, bias, gamma, beta, mean, var, eps):
    \"\"\"(W', b') with batch_norm(conv(x, W, b)) == conv(x, W', b'); bias may be None.\"\"\"
    raise NotImplementedError("exercise 4.3: write batch_norm(conv(x, W, b)) as conv(x, W', b')")"""),
    (EXERCISE_DEPENDENT, """\
check("4.3", fold_conv_bn_weights)"""),
    (MD, """\
Only eval-mode BN folds. In a training graph the mean and variance are computed from the batch itself,
and the pass refuses, saying why:"""),
    (CODE, """\
t = Graph("train_bn")
tx = t.add_input("x", (2, 3, 4, 4))
tw = t.add_param("w", np.ones((3, 3, 1, 1), np.float32))
tc = t.add("conv2d", (tx.id, tw.id), dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1))
tm = t.add("mean", (tc.id,), {"dim": (0, 2, 3), "keepdim": False})
tv = t.add("var", (tc.id,), {"dim": (0, 2, 3), "keepdim": False, "correction": 0})
ones, zeros = t.add_param("gamma", np.ones(3, np.float32)), t.add_param("beta", np.zeros(3, np.float32))
t.set_outputs([t.add("batch_norm", (tc.id, tm.id, tv.id, ones.id, zeros.id), {"eps": 1e-5}).id])
print(run_pass(fold_conv_bn, t).rejected[0])"""),
    (MD, """\
## 7. Operator fusion (算子融合)

TVM sorts ops into classes: *elementwise / broadcast* (out[i] depends on in[i]), *injective* (reshape,
transpose: each output reads one input element), *reduction* (sum, max), *complex-out-fusable*
(matmul, conv: an elementwise epilogue can be fused into them) and *opaque* (softmax here: fusion stops).
Our fusion pass is greedy, from the outputs backwards; every candidate "fuse %p into %m" is logged with
its verdict. A producer whose value someone else also reads is not fused (it must be written to memory
anyway), and a reduction ends a group.

Each fused group becomes one `fused` node; its elementwise part is generated as a Python loop and
compiled with numba (cached on disk). For a conv or matmul anchor, numpy/BLAS computes the product and
the generated *epilogue* then updates its output buffer in place."""),
    (CODE, """\
log = run_passes(block, default_pipeline())
fres = next(r for r in log if r.name == "fuse")
print(fres.summary(locations=False))"""),
    (CODE, """\
final = log.graph
print(final)
last_kernel = list(fres.kernels)[-1]         # the pass result carries the source of each kernel it created
print(fres.kernels[last_kernel])"""),
    (MD, """\
## 8. The whole pipeline, pass by pass

The default pipeline: fold BN into the convs, then clean up to a fixpoint (fold constants → simplify →
CSE → DCE, again until a round changes nothing), then fuse. Fusion comes last on purpose: once ops sit
inside a fused body, the other passes no longer see them (03Frontend/11, pass ordering). The table shows
the node count, kernel launches and bytes moved after each pass:"""),
    (CODE, """\
print(log.summary())
same = all(np.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(interpret(log.graph, *x), reference))
print("\\nsame outputs as the converted model:", same)"""),
    (MD, """\
**Scrub through the pipeline.** Drag the slider (or press play). The *focus* view draws what each pass
changed, at a size you can read: the nodes it removed (red, dashed, their old edges dotted), added
(green), fused (purple) or re-wired (yellow), with their direct inputs and users; the rest of the graph
is folded into "⋯ unchanged nodes" boxes. A wide step scrolls sideways. Below the graph: the rule that
fired for each rewrite and its source line, the candidates the pass rejected and why, the metric strip
(nodes, kernels, bytes moved, the current pass in dark purple), and the generated kernels. Untick *skip
passes that changed nothing* to see the fixpoint rounds too; switch the view to *before | after* for the
whole graph with every node kept in place, or *diff* for it in one pane."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
stepper = PassStepper(log)
stepper"""),
    (CODE, """\
print(stepper.summary())"""),
    (MD, """\
## 9. Layout: NCHW → NHWC (数据布局转换)

Channels-last (NHWC) lets a convolution read each window as contiguous runs of channels. The layout pass
rewrites each conv into `permute → conv2d_nhwc → permute`, moves the permutes through elementwise ops
(ReLU, the residual add — whose other operand already has an NHWC copy), and cancels each adjacent pair.
Only the transposes at the edges of the NHWC region remain. Note what happens to the metrics: *more*
nodes than before (two permutes), but every conv now runs channels-last — a pass is judged by what the
hardware prefers, not only by node count."""),
    (CODE, """\
nhwc = run_passes(block, default_pipeline(layout=True))
print(nhwc.summary())
print(nhwc.graph)
print("same outputs:", all(np.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(interpret(nhwc.graph, *x), reference)))"""),
    (MD, """\
## 10. `aisys.compile`: passes + generated kernels, end to end

`aisys.compile(fn_or_graph, *example_inputs)` traces a function (or takes a graph), runs the pipeline and
returns a callable that runs the optimized graph: fused nodes through their numba kernels, the rest
through the numpy references. Its `.pass_log` is what the PassStepper plays, `.kernels` the generated
source."""),
    (CODE, """\
compiled = aisys.compile(block)
out = compiled(*x)
print(compiled)
print("matches the interpreter:", all(np.allclose(o.numpy(), r, rtol=1e-5, atol=1e-5) for o, r in zip(out, reference)))
print("fused kernels:", list(compiled.kernels))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
import time
def best(f, n=20):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return min(ts)
t_interp = best(lambda: interpret(block, *x))
t_comp = best(lambda: compiled(*x))
print(f"interpreted: {t_interp*1e3:.3f} ms   compiled: {t_comp*1e3:.3f} ms   ({t_interp/t_comp:.1f}× faster)")"""),
    (MD, """\
## 11. Your passes in the pipeline

Your three functions plug into the same pass manager: your `fold_constants` and `cse` as passes, your
`fold_conv_bn_weights` inside the BN-folding pass. The stepper now plays *your* rewrites (their source
lines point into this notebook: `<cell>`)."""),
    (EXERCISE_DEPENDENT, """\
mine = [make_fold_conv_bn(fold_conv_bn_weights),
        Fixpoint([fold_constants, simplify, cse, dce], name="cleanup"),
        fuse, dce]
my_log = run_passes(block, mine)
print(my_log.summary())
print("same outputs:", all(np.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(interpret(my_log.graph, *x), reference)))"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
PassStepper(my_log)"""),
    (MD, """\
## 12. Bring your own model: ONNX out, and back in (模型转换)

The converter also runs the other way. `aisys.onnx.export(model, (x,), path)` traces an aisys model in
eval mode and writes each registry op as the ONNX operators that compute the same values; the file is
checked by `onnx.checker`. An *independent* engine then runs it — onnxruntime when it is installed, else
ONNX's own reference evaluator (`onnx.reference`) — and must agree with aisys's eager result. Below, a
small CNN built in this notebook makes the whole trip: export, check, re-import, passes, chip."""),
    (CODE, """\
aisys.manual_seed(0)
net = aisys.nn.Sequential(aisys.nn.Conv2d(1, 4, 3, padding=1), aisys.nn.BatchNorm2d(4), aisys.nn.ReLU(),
                          aisys.nn.MaxPool2d(2), aisys.nn.Flatten(), aisys.nn.Linear(4 * 4 * 4, 10)).eval()
image = aisys.randn(2, 1, 8, 8)
path = os.path.join(tempfile.mkdtemp(), "small_cnn.onnx")
proto = aisys.onnx.export(net, (image,), path)
print(f"wrote {os.path.basename(path)}: {len(proto.graph.node)} ONNX nodes",
      [n.op_type for n in proto.graph.node], "| input", proto.graph.input[0].name)"""),
    (CODE, """\
import onnx
onnx.checker.check_model(proto, full_check=True)          # raises if the file is not valid ONNX
try:
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    def oracle(feeds):
        return session.run(None, feeds)[0]
except ImportError:                                      # onnxruntime is optional: ONNX's reference evaluator
    from onnx.reference import ReferenceEvaluator
    reference_engine = ReferenceEvaluator(proto)
    def oracle(feeds):
        return reference_engine.run(None, feeds)[0]
theirs = oracle({proto.graph.input[0].name: image.numpy()})
ours = net(image).numpy()
print("onnx.checker: valid;  the ONNX engine agrees with aisys eager to 1e-5:",
      np.allclose(theirs, ours, rtol=1e-5, atol=1e-6))"""),
    (MD, """\
Read it back in: the conversion log says what each ONNX node became. The imported graph is an ordinary
`Graph`, so the same pipeline folds its BatchNorm into the conv and fuses the epilogues, and the chip
lowering runs it — a model from a file, on the simulated accelerator:"""),
    (CODE, """\
small = aisys.onnx.load(path)
print("\\n".join(small.conversion_log))
small_log = run_passes(small, default_pipeline())
print()
print(small_log.summary())
print("same outputs after the passes:", np.allclose(interpret(small_log.graph, image.numpy())[0], ours,
                                                    rtol=1e-5, atol=1e-5))
on_chip = aisys.chip.simulate(aisys.chip.lower_graph(small_log.graph, "davinci"))
print(on_chip.summary().splitlines()[0])"""),
    (MD, """\
Step through what the pipeline did to the model that came from the file: BatchNorm folded into the conv,
the epilogues fused into the conv and the matmul — the same stepper as above, on an imported graph."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
onnx_stepper = PassStepper(small_log)
onnx_stepper"""),
    (CODE, """\
print(onnx_stepper.summary())"""),
    (MD, """\
**A model made elsewhere.** When PyTorch is installed, the next cell exports a PyTorch CNN with
`torch.onnx.export` and sends it through the same steps (PyTorch is optional: without it the cell says
so and the lab goes on)."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed here: this cell is optional (pip install torch to try it)")
if torch is not None:
    torch.manual_seed(0)
    tnet = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    timage = torch.randn(2, 1, 8, 8)
    tpath = os.path.join(tempfile.mkdtemp(), "torch_cnn.onnx")
    import warnings
    with warnings.catch_warnings():                      # the TorchScript-based exporter says it is the old one
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(tnet, (timage,), tpath, input_names=["image"], output_names=["logits"], dynamo=False)
    from_torch = aisys.onnx.load(tpath)
    print("\\n".join(from_torch.conversion_log))
    mine = aisys.onnx.run(from_torch, {"image": timage.numpy()})["logits"]
    print("equals PyTorch:", np.allclose(mine, tnet(timage).detach().numpy(), rtol=1e-5, atol=1e-6))
    torch_log = run_passes(from_torch, default_pipeline())
    print(torch_log.graph.summary())
    print(aisys.chip.simulate(aisys.chip.lower_graph(torch_log.graph, "davinci")).summary().splitlines()[0])"""),
    (MD, """\
### Exercise 4.4 — ONNX `Gemm` on registry ops

`Gemm` is how exporters write a fully connected layer: **Y = alpha·A′·B′ + beta·C**, where A′ is A
transposed when `transA=1` (likewise B′ with `transB`), and C broadcasts to Y's shape (it may be a
scalar, a row `(N,)` or `(1, N)`, a column `(M, 1)`, the full `(M, N)`, or absent). Write
`gemm_to_registry(g, a, b, c=None, alpha=1.0, beta=1.0, trans_a=0, trans_b=0)`: `a`, `b`, `c` are node ids
of graph `g`; add registry ops with `g.add(op, inputs, attrs).id` (`permute` with `{"dims": (1, 0)}`,
`matmul`, `mul`, `add`) and constants with `g.add_const(np.float32(v)).id`, and return the id of Y. Emit a
multiply only when alpha (or beta) is not 1, and skip C when beta is 0. The check compares your graph with
an ONNX engine (onnxruntime, or onnx's reference evaluator) on golden and random shapes and attributes."""),
    (CODE, """\
@exercise("4.4")
def gemm_to_registry(g, a, b, c=None, alpha=1.0, beta=1.0, trans_a=0, trans_b=0):
    \"\"\"ONNX Gemm, Y = alpha·A'·B' + beta·C, as registry ops on graph g; returns Y's node id.\"\"\"
    raise NotImplementedError("exercise 4.4: permute when transposed, matmul, mul by alpha/beta, add C")"""),
    (EXERCISE_DEPENDENT, """\
check("4.4", gemm_to_registry)"""),
    (MD, """\
Your converter now plugs into the importer: `converters={"Gemm": …}` replaces the library's mapping for
every Gemm node of a model. This two-layer MLP uses every Gemm attribute:"""),
    (EXERCISE_DEPENDENT, """\
mlp_model = gemm_mlp(seed=0)
yours = aisys.onnx.load(mlp_model, converters={"Gemm": aisys.onnx.gemm_converter(gemm_to_registry)})
print("\\n".join(yours.conversion_log))
xb = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
print("same as the library's import:", np.allclose(aisys.onnx.run(yours, x=xb)["y"],
                                                   aisys.onnx.run(aisys.onnx.load(mlp_model), x=xb)["y"],
                                                   rtol=1e-6, atol=1e-6))"""),
    (MD, """\
## What to take away

- A converter maps an exported model onto the engine's IR, operator by operator (Gemm is four registry ops),
  already drops no-ops (Identity, Dropout), and refuses what it cannot map exactly — never a wrong graph.
- An exchange format is only as good as its checks: the exported file must pass `onnx.checker` and agree
  with an independent engine; ONNX's own backend tests run against aisys (`make test`).
- Each pass is a small, verifiable rewrite; a log of rule, removed/added nodes and rejected candidates
  makes a compiler debuggable — and teachable.
- Constant folding needs purity and a size cap; CSE needs value-based keys and must skip impure ops;
  algebraic identities must respect IEEE-754 (NaN·0 ≠ 0).
- Conv+BN folding is a per-output-channel scale of the filters and a shift of the bias — the conv's own
  bias included.
- Fusion turns chains into one kernel: kernel launches and bytes moved fall, the FLOPs stay the same.
- Pass order matters: clean up first, fuse last.

Next: lab 05 plans the memory of the graphs these passes produce; lab 08 runs them on a simulated chip."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab04")


if __name__ == "__main__":
    labcells.main(CELLS, "lab04", DEFAULT_OUT, sys.argv)
