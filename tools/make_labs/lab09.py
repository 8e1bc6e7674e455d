"""Write labs/09_compression.ipynb (lab 09 — compression: quantization, pruning, distillation) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab09.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  .venv/bin/python tools/run_labs.py 09
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "09_compression.ipynb"


def _mac_pj(word_bytes: int) -> float:
    from aisys.chip import mac_pj
    return mac_pj(word_bytes)


def _default_percentile() -> float:
    from aisys.framework.compress import PercentileObserver
    return PercentileObserver().percentile


# Quantities the text states that no cell prints (computed from the library, which cites its sources).
QUOTED = {
    "0.3 pJ": lambda: _mac_pj(1),
    "4.6 pJ": lambda: _mac_pj(4),
    "99.99%": _default_percentile,
    "four MACs": "a 32-bit PE datapath holds four int8 operand pairs (NVIDIA's DP4A instruction, Ascend's int8 cube)",
}


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 09 — Compression: quantization, pruning, distillation (模型压缩：量化、剪枝与蒸馏)

A trained network carries far more precision and far more weights than it needs to give the same answers.
Compression trades some of that away for a model that is smaller, faster and cheaper in energy — *if* the
hardware can turn the savings into fewer cycles. This lab compresses a small convolutional network three
ways and runs every version on the simulated chip of lab 08:

1. **Quantization (量化)** — store and compute with 8-bit integers instead of 32-bit floats: one formula,
   calibration of each tensor's range (校准), post-training quantization (PTQ, 训练后量化), integer-only
   inference, and quantization-aware training (QAT, 量化感知训练).
2. **Pruning (剪枝)** — set weights to zero one at a time (unstructured, 非结构化) or remove whole channels
   (structured, 结构化), and see which of the two a systolic array can use.
3. **Distillation (知识蒸馏)** — train a smaller student on a teacher's softened outputs.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `04Inference/03Slim` — 01Introduction,
02Quant, 03QAT, 04PTQ, 05Pruning, 06Distillation — and 06BitWidth (number formats). Papers used: Jacob et al.,
*Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference* (CVPR 2018);
Migacz, *8-bit Inference with TensorRT* (GTC 2017); Esser et al., *Learned Step Size Quantization* (ICLR
2020); Li et al., *Pruning Filters for Efficient ConvNets* (ICLR 2017); Hinton, Vinyals & Dean, *Distilling
the Knowledge in a Neural Network* (2015); Horowitz, *Computing's Energy Problem* (ISSCC 2014).

**Goals.** After this lab you can
- quantize and dequantize with one stated convention, and say why the course's two formulas disagree;
- calibrate a tensor's range (min-max, percentile, MSE, TensorRT's KL) and read what clipping costs;
- quantize a model after training, fold it into integer-only inference, and check it bit for bit;
- prune to an exact sparsity, and predict whether the pruned model runs faster on a dense array.

**Exercises.** 9.1 `quantize_tensor` · 9.2 `kl_threshold` · 9.3 `magnitude_mask`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or
what went wrong."""),
    (CODE, """\
import copy

import numpy as np

import aisys
from aisys import chip, nn, optim
from aisys.compiler import float_ops_between
from aisys.framework import compress
from aisys.framework.data import DataLoader
from aisys.labkit import check, exercise
from aisys.models import LeNet, MLP, accuracy, digits, train_classifier
from widgets.compress import ChipPayoff, PruningView, QuantHistogram, SensitivityScan

np.set_printoptions(linewidth=110)
aisys.manual_seed(0)
train = DataLoader(digits("train"), 32, shuffle=True, generator=0)
test = DataLoader(digits("test"), 360)
calibration = [batch for _, batch in zip(range(4), DataLoader(digits("train"), 128, shuffle=True, generator=1))]
x_test, y_test = next(iter(test))

model = LeNet(image_size=8, channels=(16, 32))
train_classifier(model, train, epochs=8, lr=3e-3, progress=False, scheduler=lambda opt: optim.CosineAnnealingLR(opt, 8))
model.eval()
fp32_accuracy = accuracy(model, test)
print(f"LeNet on the 8x8 digits, trained for 8 epochs: {100 * fp32_accuracy:.2f}% of 360 test images right")"""),
    (MD, """\
## 1. One convention for quantization (量化公式)

An 8-bit code can take 256 values. To store a real tensor in it we pick a **scale** $s$ (缩放因子, the real
value of one step) and a **zero point** $z$ (零点, the code that stands for real 0):

$$q = \\operatorname{clamp}\\big(\\operatorname{round}(x / s) + z,\\; q_{\\min}, q_{\\max}\\big), \\qquad \\hat x = s\\,(q - z).$$

Inside the covered range the error $|x - \\hat x|$ is at most $s/2$ (rounding); beyond it values **clamp**
(截断) to $q_{\\min}$ or $q_{\\max}$. *Affine* (非对称) quantization maps a range $[\\min, \\max]$ (widened to
contain 0, so that zero padding and ReLU stay exact) onto all the codes: $s = (\\max - \\min)/(q_{\\max} -
q_{\\min})$, $z = q_{\\min} - \\operatorname{round}(\\min / s)$. *Symmetric* (对称) quantization fixes $z = 0$
and $s = \\max|x| / 127$ — what weights use.

**The course's two formulas.** 02Quant writes $q = \\operatorname{round}(x/s) + z$; 04PTQ writes
$q = \\operatorname{round}(x/s) - z$ (students ask which is right: AISystem issue #306). Both are
consistent *with their own* dequantization — the two $z$'s simply have opposite signs. Mixing them
(quantize with one, dequantize with the other) is off by $2zs$. aisys states one convention, $+z$, everywhere."""),
    (CODE, """\
x = np.array([-1.0, -0.5, 0.0, 0.7, 0.95])
s, z = compress.qparams_from_range(-1.0, 3.0, "int8")
q_02 = np.clip(np.round(x / s) + z, -128, 127).astype(int)      # 02Quant: + z (aisys)
q_04 = np.clip(np.round(x / s) - z, -128, 127).astype(int)      # 04PTQ: − z, same number z
print(f"range [-1, 3] in int8: scale {s:.6f}, zero point {z}")
print("x                     ", x)
print("02Quant codes         ", q_02, "  back:", np.round(compress.dequantize(q_02, s, z), 4))
print("04PTQ codes           ", q_04, "  back with s(q - z):", np.round(s * (q_04 - z), 4))
print(f"the mix is off by 2·z·s = {2 * z * s:.4f}; 04PTQ's z is aisys's -z:",
      np.array_equal(q_04, np.clip(np.round(x / s) + (-z), -128, 127).astype(int)))"""),
    (MD, """\
### Exercise 9.1 — quantize with the stated convention

Write `quantize_tensor(x, scale, zero_point=0, dtype="int8", axis=None)`, returning the integer codes.
`dtype` is `"int8"` (codes −128…127), `"uint8"` (0…255) or `"int4"` (−8…7, stored in 8 bits);
`compress.qrange(dtype)` gives the range. With `axis` set, `scale` and `zero_point` hold one value per
channel along that axis (per-channel quantization: one scale per output channel of a weight)."""),
    (CODE, """\
@exercise("9.1")
def quantize_tensor(x, scale, zero_point=0, dtype="int8", axis=None):
    \"\"\"Integer codes q = clamp(round(x / scale) + zero_point, qmin, qmax) of x (per channel along axis).\"\"\"
    raise NotImplementedError("exercise 9.1: divide, round, add the zero point, clamp")"""),
    (EXERCISE_DEPENDENT, """\
check("9.1", quantize_tensor)"""),
    (EXERCISE_DEPENDENT, """\
# your function on the trained weights of conv2: symmetric int8 and int4, one scale per output channel
w = model.conv2.weight.numpy()
for dtype in ("int8", "int4"):
    amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    sc, zc = compress.qparams_from_range(-amax, amax, dtype, symmetric=True)
    codes = quantize_tensor(w, sc, zc, dtype, axis=0)
    err = np.abs(w - compress.dequantize(codes, sc, zc, axis=0, dtype=np.float64)).max()
    print(f"{dtype}: codes in [{codes.min()}, {codes.max()}], worst error {err:.5f} = "
          f"{err / sc.max():.2f} of the largest step")"""),
    (MD, """\
## 2. Calibration: where to clip (校准)

The scale comes from a range, and the range from the values a tensor actually takes on real inputs
(*calibration data*). Taking the min and max clips nothing, but one rare outlier stretches every step. A
smaller **clip threshold** $T$ saturates the outliers and gives everything else finer steps. Four ways to
choose $T$: **min-max**; the **percentile** (99.99% of |x| inside); the threshold with the smallest
**mean squared error**; and **KL (entropy) calibration**, TensorRT's method from the 04PTQ lecture
(Migacz, GTC 2017):

1. histogram |x| into 2048 bins over [0, max|x|];
2. for every candidate $i$ from 128 to 2047 bins: the reference $P$ is the first $i$ bins with every count
   beyond them (the outliers) added to bin $i-1$; the candidate $Q$ is the same $i$ bins merged into
   128 levels and spread back evenly over each level's non-empty bins;
3. keep the $i$ with the smallest divergence $\\mathrm{KL}(P\\|Q) = \\sum_j P_j \\log(P_j / Q_j)$;
   the threshold is $(i + 0.5)$ bin widths.

Below, the input of LeNet's first fully connected layer on the calibration images, with each calibrator's
threshold. **Drag the slider**: the caption shows the quantization MSE, the KL divergence, and the test
accuracy when this one tensor is quantized with your threshold."""),
    (CODE, """\
activations = []
hook = model.flatten.register_forward_hook(lambda m, args, out: activations.append(out.numpy().copy()))
with aisys.no_grad():
    for xb, _ in calibration:
        model(xb)
hook.remove()
fc1_input = np.concatenate(activations)


def accuracy_clipped_at(threshold):
    \"\"\"Test accuracy when the fc1 input is fake-quantized to int8 over [0, threshold].\"\"\"
    s, z = compress.qparams_from_range(0.0, threshold, "int8")
    quantize_out = lambda m, args, out: aisys.tensor(compress.fake_quantize(out.numpy(), s, z))
    h = model.flatten.register_forward_hook(quantize_out)
    try:
        return accuracy(model, test)
    finally:
        h.remove()


for name, t in compress.threshold_report(fc1_input).items():
    print(f"{name:<11} clips at {t:7.4f}: test accuracy {100 * accuracy_clipped_at(t):.2f}%")"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
hist = QuantHistogram(fc1_input, evaluate=accuracy_clipped_at, title="fc1 input (after ReLU and pooling)")
hist"""),
    (CODE, """\
print(hist.summary())"""),
    (MD, """\
This tensor never goes negative (it comes after a ReLU), so the range is $[0, T]$ and all 256 codes
cover it. Clip far below the KL threshold and accuracy falls: too many activations saturate.

### Exercise 9.2 — KL calibration

Write `kl_threshold(x, bins=2048, levels=128)` following the three steps above. It returns the threshold
in x's units. `bins` and `levels` may be other than 2048 and 128."""),
    (CODE, """\
@exercise("9.2")
def kl_threshold(x, bins=2048, levels=128):
    \"\"\"TensorRT's entropy-calibration threshold on |x|, in x's units.\"\"\"
    raise NotImplementedError("exercise 9.2: histogram, then for each candidate compare P and Q by KL")"""),
    (EXERCISE_DEPENDENT, """\
check("9.2", kl_threshold)"""),
    (EXERCISE_DEPENDENT, """\
# your threshold on a seeded heavy-tailed sample (Student t with 1.5 degrees of freedom)
heavy = np.random.default_rng(0).standard_t(1.5, 50_000)
t = kl_threshold(heavy)
print(f"max |x| {np.abs(heavy).max():.1f}, your KL threshold {t:.3f} = {t / np.abs(heavy).max():.4f} of it; "
      f"{100 * np.mean(np.abs(heavy) > t):.2f}% of the values saturate")"""),
    (MD, """\
## 3. Post-training quantization and integer-only inference (训练后量化与整数推理)

`compress.quantize(model, calibration_data)` calibrates every layer's input range, quantizes the weights
symmetrically per output channel, and returns a **quantized model**: each Linear/Conv2d now computes

    q_x = quantize(x)           x̂ = dequantize(q_x), ŵ = dequantize(q_w)      exact in float64
    acc = quantize(linear(x̂, ŵ, b̂), s_x·s_w, int32)                           the int32 accumulator
    q_y = requantize(acc)       the fixed-point multiplier M0·2⁻³¹·2⁻ⁿ ≈ s_x·s_w / s_y (Jacob et al.)

— a float *simulation* of integer inference, with quantize/dequantize ops you can see in its graph."""),
    (CODE, """\
for method in ("minmax", "percentile", "mse", "kl"):
    q = compress.quantize(model, calibration, weights="per_channel", activations=method)
    print(f"int8, activations by {method:<10}: {100 * accuracy(q, test):.2f}%   (fp32 {100 * fp32_accuracy:.2f}%)")
qmodel = compress.quantize(model, calibration, activations="kl")
print()
print(qmodel.summary())"""),
    (MD, """\
The compiler's `fold_quantization` pass moves every op onto the integer codes, reading from the op registry
how each op runs quantized: a dequantize → matmul/conv → quantize(int32) group becomes `matmul_integer` /
`conv2d_integer` (int8 × int8 → int32) plus an int32 bias; ReLU becomes the clamp of the requantization;
max pooling and reshapes run on the codes unchanged. What is left computes only on integers between the
input's `quantize` and the output's `dequantize`."""),
    (CODE, """\
qdq = aisys.trace(qmodel, x_test)
integer = aisys.compile(qmodel, x_test, passes=["fold_quantization", "dce"], backend="reference")
print("traced simulation:", qdq.count_ops())
print("integer-only:     ", integer.graph.count_ops())
print("float ops between the input's quantize and the output's dequantize:", float_ops_between(integer.graph))
same = np.array_equal(integer(x_test).numpy(), qmodel(x_test).numpy())
print("integer-only outputs equal the simulation bit for bit:", same)
layer = qmodel.layers[2]
print(f"{layer.name}: requantize by M0 = {int(layer.multiplier[0])} and shift {int(layer.shift[0])} "
      f"(channel 0), i.e. M = {compress.real_multiplier(layer.multiplier[0], layer.shift[0]):.6g}")"""),
    (MD, """\
### Quantization-aware training (量化感知训练)

At 4 bits the rounding error is 16 times larger. QAT trains *through* the rounding: every forward pass
fake-quantizes weights and activations, and the gradient passes round() as if it were the identity (the
straight-through estimator), except where a value was clipped — so the weights can settle where the 4-bit
grid suits them. Compare post-training int4 with a few epochs of QAT:"""),
    (CODE, """\
int4_ptq = compress.quantize(model, calibration, weight_dtype="int4", weights="per_tensor", activations="minmax")
aisys.manual_seed(0)
qat = compress.prepare_qat(model, weight_dtype="int4", per_channel=False)
train_classifier(qat, train, epochs=3, lr=1e-3, progress=False, scheduler=lambda opt: optim.CosineAnnealingLR(opt, 3))
int4_qat = compress.convert(qat, calibration)
print(f"fp32 {100 * fp32_accuracy:.2f}% | int4 weights (per tensor), PTQ {100 * accuracy(int4_ptq, test):.2f}% | "
      f"after 3 epochs of QAT {100 * accuracy(int4_qat, test):.2f}%")"""),
    (MD, """\
## 4. Pruning (剪枝)

Magnitude pruning sets the smallest weights to zero: exactly a target share of them, per layer or ranked
over the whole model. Structured pruning removes whole output channels — those with the smallest L1 norm
— and the inputs of the next layer that read them, so the layers really shrink.

### Exercise 9.3 — an exact sparsity

Write `magnitude_mask(weight, sparsity, dim=None)`, returning a boolean mask of the weights to **keep**:
exactly `round(sparsity · n)` entries pruned, the smallest |w| first (ties: the earlier position first).
With `dim=0`, rank whole output channels by their L1 norm and prune `round(sparsity · C)` of them. The check
then uses your masks on LeNet and runs both kinds of pruned model on the dense systolic preset."""),
    (CODE, """\
@exercise("9.3")
def magnitude_mask(weight, sparsity, dim=None):
    \"\"\"Boolean mask (True = keep) pruning exactly round(sparsity * n) smallest-magnitude entries (channels if dim=0).\"\"\"
    raise NotImplementedError("exercise 9.3: rank by |w| (or channel L1 norm), prune the k smallest")"""),
    (EXERCISE_DEPENDENT, """\
check("9.3", magnitude_mask)"""),
    (EXERCISE_DEPENDENT, """\
# your masks in the library's pruning record: 75% of each layer's weights, drawn by PruningView
yours = copy.deepcopy(model)
layers = {name: m for name, m in yours.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
your_pruning = compress.Pruning(yours, {name: magnitude_mask(m.weight.numpy(), 0.75) for name, m in layers.items()})
your_pruning.apply()
print(your_pruning.summary())
print(f"test accuracy with your masks, before any fine-tuning: {100 * accuracy(yours, test):.2f}%")"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
PruningView(your_pruning)"""),
    (MD, """\
Which layers can take it? A sensitivity scan prunes one layer at a time and measures the model:"""),
    (CODE, """\
scan = compress.sensitivity_scan(model, lambda m: accuracy(m, test), sparsities=(0.5, 0.7, 0.9))
print(scan.summary())"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
SensitivityScan(scan)"""),
    (CODE, """\
sparse = copy.deepcopy(model)
unstructured = compress.prune(sparse, 0.9, scope="global")
print(f"90% of the weights zero, no retraining: {100 * accuracy(sparse, test):.2f}%")
train_classifier(sparse, train, epochs=3, lr=1e-3, progress=False,
                 optimizer=unstructured.enforce(optim.Adam(sparse.parameters(), lr=1e-3)))
print(f"after 3 epochs of fine-tuning with the mask held: {100 * accuracy(sparse, test):.2f}%")

slim = copy.deepcopy(model)
structured = compress.prune(slim, 0.5, structured=True, layers=nn.Conv2d, example=x_test[:4])
print(f"half the conv channels removed: {100 * accuracy(slim, test):.2f}%", "|", slim.conv1, "|", slim.conv2)
aisys.manual_seed(0)
train_classifier(slim, train, epochs=3, lr=1e-3, progress=False)
print(f"after 3 epochs of fine-tuning: {100 * accuracy(slim, test):.2f}%")"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
PruningView(structured)"""),
    (MD, """\
## 5. The payoff on the chip (芯片上的收益)

Now every version of the model runs on the simulated chip: SCALE-Sim's 32×32 systolic array with a 32-bit
datapath (`with_datapath(4)`: fp32 words). Each PE multiplies one fp32 pair per cycle — or, packed into the
same 32 bits, four int8 pairs (as NVIDIA's DP4A and Ascend's int8 cube do), and every int8 tensor moves a
quarter of the bytes. A zero weight, though, is multiplied like any other: the array moves in lockstep."""),
    (CODE, """\
batch = x_test[:128]
fp32_chip = chip.preset("scalesim32").with_datapath(4)
int8_graph = aisys.compile(qmodel, batch, passes=["fold_quantization", "dce"], backend="reference").graph
payoff = chip.compare_graphs({"fp32": aisys.trace(model, batch), "int8": int8_graph,
                              "90% sparse": aisys.trace(sparse, batch),
                              "half the channels": aisys.trace(slim, batch)}, fp32_chip)
print(payoff.summary())
print(f"\\nint8 runs {payoff.speedup('int8'):.1f}x faster on {fp32_chip.name}; the 90% sparse model runs "
      f"{payoff.speedup('90% sparse'):.2f}x as fast as the dense one; half the channels: "
      f"{payoff.speedup('half the channels'):.2f}x")"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
ChipPayoff(payoff)"""),
    (MD, """\
Int8 pays twice — four MACs per PE and a quarter of the bytes — but not the full 4×: the array still
fills and drains at every fold, and the input's quantize and the output's dequantize cost a pass each.
The energy falls further (toggle **energy**): Horowitz's int8 MAC costs 0.3 pJ against 4.6 pJ in fp32.
The sparse model's bars are the dense model's. Only a PE that *skips* zero weights could use them — and on a
systolic array even that saves energy, not time (the wavefront moves every cycle). Removing channels does
pay: smaller GEMMs, fewer folds."""),
    (CODE, """\
skipping = fp32_chip.with_(zero_skipping=True)
gated = chip.compare_graphs({"dense": aisys.trace(model, batch), "90% sparse": aisys.trace(sparse, batch)}, skipping)
d, s90 = gated.baseline, gated.run("90% sparse")
print(f"zero-skipping PEs: cycles {d.cycles:,} -> {s90.cycles:,}; "
      f"MAC energy {d.energy.parts_pj['MAC'] / 1e6:.2f} -> {s90.energy.parts_pj['MAC'] / 1e6:.2f} uJ")"""),
    (MD, """\
## 6. Distillation (知识蒸馏)

A teacher's output is more than its top class: it says which wrong classes are *almost* right (a 4 that
looks like a 9). Hinton's distillation trains a student to match the teacher's softened probabilities
$p = \\mathrm{softmax}(z/T)$:

$$\\mathcal L = \\alpha\\,T^2\\,\\mathrm{KL}(p_{\\text{teacher}}\\,\\|\\,p_{\\text{student}}) + (1-\\alpha)\\,\\mathrm{CE}(z_{\\text{student}}, y).$$

The $T^2$ keeps the soft term's gradients the same size as $T$ changes. The soft targets need no labels:
below, a small MLP student learns from the LeNet teacher on the training *images* alone, against the same
student trained on only 100 labelled images."""),
    (CODE, """\
images, labels = digits("train").tensors
few = DataLoader(aisys.data.TensorDataset(images[:100], labels[:100]), 20, shuffle=True, generator=0)
aisys.manual_seed(0)
alone = MLP([64, 32, 10])
train_classifier(alone, few, epochs=20, lr=3e-3, progress=False)
aisys.manual_seed(0)
student = MLP([64, 32, 10])
compress.distill(student, model, train, optim.Adam(student.parameters(), lr=3e-3), epochs=3, temperature=4.0,
                 alpha=1.0)
print(f"teacher (LeNet) {100 * fp32_accuracy:.2f}% | student on 100 labels {100 * accuracy(alone, test):.2f}% | "
      f"student distilled from the teacher, no labels {100 * accuracy(student, test):.2f}%")"""),
    (MD, """\
## Summary

- One convention: $q = \\operatorname{clamp}(\\operatorname{round}(x/s) + z)$, $\\hat x = s(q - z)$. The
  course's $-z$ is the same map with $z$ negated; mixing the two is wrong by $2zs$.
- Calibration chooses what to clip: KL and percentile trade rare outliers for finer steps.
- Post-training int8 costs this model little; the compiler folds its quantize/dequantize ops into
  integer-only kernels that reproduce the simulation exactly. At 4 bits, QAT trains through the rounding.
- Unstructured sparsity leaves a dense systolic array exactly as busy; removing channels shrinks the GEMMs.
  Int8 speeds the same array up several times and saves more energy still.
- Distillation moves a teacher's knowledge into a smaller student, even without labels.

Previous: lab 08 (the chip these models ran on)."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab09")


if __name__ == "__main__":
    labcells.main(CELLS, "lab09", DEFAULT_OUT, sys.argv)
