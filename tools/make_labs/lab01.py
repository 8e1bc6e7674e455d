"""Write labs/01_tensors.ipynb (lab 01 — tensors, bits and layouts) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab01.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  AISYS_LAB_SOLUTIONS=1 .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
      --ExecutePreprocessor.store_widget_state=False labs/01_tensors.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "01_tensors.ipynb"


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 01 — Tensors, bits and layouts (张量、比特位宽与数据排布)

A tensor is a block of numbers, but memory is a single line of bytes. This lab is about the two
decisions that turn one into the other, and why AI systems care about both:

1. **Where each element goes** — strides, views and data layouts (数据布局): NCHW, NHWC, Ascend's
   NC1HWC0 and the NZ fractal format (分形格式).
2. **What bits each number gets** — the fields of FP32, BF16, FP16 and FP8 (比特位宽), and how a value
   is rounded when it moves to a smaller format.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `03Compiler/03Frontend/04LayoutPrinc`
(布局转换原理), `03Frontend/05LayoutAlgo` (布局转换算法), `04Inference/06Kernel/07Nc4hw4` (its text is still a
placeholder in the course, so we fill it in here), and `02Hardware/01Foundation/06BitWidth` (计算之比特位宽).
The Ascend formats follow the CANN documentation ("数据排布格式").

**Goals.** After this lab you can
- predict the strides and the offset of a transpose or a slice, and say why it is non-contiguous (非连续);
- draw the memory order of a matrix in ND, column-major and NZ, and of a feature map in NCHW, NHWC, NC1HWC0;
- read the sign / exponent / mantissa of a float and explain round-to-nearest-even.

**Exercises.** 1.1 `to_nz` · 1.2 `nchw_to_nc1hwc0` · 1.3 `fp32_to_bf16_bits`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or
what went wrong."""),
    (CODE, """\
import numpy as np

import aisys
from aisys.framework import bits, layout
from aisys.labkit import check, exercise
from widgets.layout import BitView, LayoutView

np.set_printoptions(linewidth=100)
print("ready")"""),
    (MD, """\
## 1. Strides and views (步长与视图)

Memory is one line. A tensor is a *view* of it, described by three things: a **shape**, one **stride**
per dimension (how many elements to jump to move one step along that dimension) and an **offset**.
Element `(i, j)` lives at

$$\\text{address}(i, j) = \\text{offset} + i \\cdot \\text{stride}_0 + j \\cdot \\text{stride}_1 .$$

A row-major (行优先) 3×4 matrix has strides (4, 1). Transposing it moves no data: it swaps the strides to
(1, 4). The result is *non-contiguous* (非连续张量): neighbours in the logical tensor are no longer neighbours
in memory. `contiguous()` is the one operation that copies, laying the elements out again in row-major order."""),
    (CODE, """\
t = aisys.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
tt = t.transpose(0, 1)
print("t            shape", t.shape, "stride", t.stride(), "contiguous", t.is_contiguous())
print("t.T          shape", tt.shape, "stride", tt.stride(), "contiguous", tt.is_contiguous())
print("t.T.contig.  shape", tt.contiguous().shape, "stride", tt.contiguous().stride())
print()
print("view_info(t.T):       ", layout.view_info(tt))
print("view_info(t[1:, ::2]):", layout.view_info(t[1:, ::2]))"""),
    (MD, """\
The slice `t[1:, ::2]` starts 4 elements into the buffer (offset 4) and skips every other column
(stride 2): still a view, no copy. Because a view is just (shape, strides, offset), we can build views
by hand — for example overlapping sliding windows, the trick behind im2col. `as_strided_view`
checks the view before making it and names the first index that would read outside the buffer."""),
    (CODE, """\
buffer = np.arange(10)
windows = layout.as_strided_view(buffer, shape=(4, 4), strides=(2, 1), offset=0)
print("4 windows of width 4, hop 2 (all views of one 10-element buffer):")
print(windows)
try:
    layout.as_strided_view(buffer, shape=(4, 4), strides=(2, 1), offset=2)
except ValueError as err:
    print("\\nrefused:", err)"""),
    (MD, """\
## 2. Data layouts (数据排布)

The same logical tensor can be laid out in memory in many orders. The lecture 04LayoutPrinc compares
**NCHW** (each channel a contiguous plane — PyTorch, Caffe; good for per-channel work on GPUs) with
**NHWC** (the channels of a pixel side by side — TensorFlow; good for 1×1 convolutions on CPUs).
05LayoutAlgo then shows what Huawei Ascend's DaVinci cores want:

- **NC1HWC0** (五维格式): split C into C1 = ⌈C/C0⌉ blocks of C0 channels (C0 = 16 for fp16, 32 for int8 —
  the cube unit multiplies 16×16 tiles) and store each block as H×W×C0; C is padded with zeros to C1·C0.
  MNN's **NC4HW4** (07Nc4hw4) is the same idea with C0 = 4, one 128-bit SIMD register of fp32.
- **NZ** (also written zN, FRACTAL_NZ) for matrices: cut the matrix into h0×w0 *fractals*; inside a
  fractal go row by row (a small "z"), and visit the fractals column by column (a big "N").
  The lecture's example: a 4×4 matrix with 2×2 fractals is stored as `[0, 1, 4, 5, 8, 9, 12, 13, 2, 3, …]`.

`layout.address_order(shape, name)` lists which logical element (numbered row-major) sits at each address:"""),
    (CODE, """\
for name in ["ND", "ColMajor", "zZ", "nZ", "NZ"]:
    print(f"{name:9s}", layout.address_order((4, 4), name, h0=2, w0=2).tolist())
print()
for name in ["NCHW", "NHWC", "NC1HWC0"]:
    print(f"{name:9s}", layout.address_order((1, 3, 2, 2), name, c0=2).tolist(), " (-1 = padding)")"""),
    (MD, """\
### The visual moment: one matrix, four memories

Below, the same 4×4 matrix is drawn with each cell coloured by its memory address (dark = low address,
yellow = high); the strip underneath is memory itself. Switch the layout, then press **▶ Play** to watch
the cells light up in the order the hardware reads them. In NZ, the top-left 2×2 fractal comes first,
then the one *below* it — that's the big "N"."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
matrix_view = LayoutView((4, 4), layouts=["ND", "ColMajor", "zZ", "NZ"], h0=2, w0=2)
matrix_view"""),
    (CODE, """\
matrix_view.layout_picker.value = "NZ"   # what clicking "NZ" does
matrix_view.step.value = 6               # ... and stopping the animation after 6 addresses
print(matrix_view.summary())"""),
    (MD, """\
The same for a feature map with N=1, C=3, H=W=3 and C0 = 2: in NC1HWC0 the third channel gets a block
of its own, and half of that block is padding (grey in the strip) — memory the hardware moves and
multiplies but that holds nothing."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
feature_view = LayoutView((1, 3, 3, 3), layouts=["NCHW", "NHWC", "NC1HWC0"], c0=2)
feature_view"""),
    (CODE, """\
feature_view.layout_picker.value = "NC1HWC0"
print(feature_view.summary())"""),
    (MD, """\
### Exercise 1.1 — ND → NZ (`to_nz`)

Write `to_nz(A, h0, w0)` for a matrix `A` of shape `(H, W)` — or a batch of matrices `(..., H, W)`.
Return an array of shape `(..., W1, H1, h0, w0)` with `H1 = ⌈H/h0⌉`, `W1 = ⌈W/w0⌉`, whose row-major order
is the NZ memory order. When H or W is not a multiple of the fractal size, pad with zeros first.

The lecture gives the recipe: *pad → reshape (H1, h0, W1, w0) → transpose to (W1, H1, h0, w0)*.
The check uses the lecture's 4×4 example, fractals that are not square (2×3), an unaligned 5×7 matrix, a
batch of matrices, and 40 random shapes (hypothesis), and reports the smallest shape that fails."""),
    (CODE, """\
@exercise("1.1")
def to_nz(A, h0, w0):
    \"\"\"Return A (shape (..., H, W)) in NZ order: shape (..., W1, H1, h0, w0), zero-padded.\"\"\"
    raise NotImplementedError("exercise 1.1: pad A, cut it into h0×w0 fractals, order them column by column")"""),
    (EXERCISE_DEPENDENT, """\
check("1.1", to_nz)"""),
    (MD, """\
Your function at work: the memory order it produces, drawn next to the library's NZ."""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
index_matrix = np.arange(16).reshape(4, 4)
yours_view = LayoutView((4, 4), layouts=["NZ"], custom={"your to_nz": to_nz(index_matrix, 2, 2).reshape(-1)})
yours_view"""),
    (EXERCISE_DEPENDENT, """\
yours_view.layout_picker.value = "your to_nz"
print(yours_view.summary())"""),
    (MD, """\
### Exercise 1.2 — NCHW → NC1HWC0 (`nchw_to_nc1hwc0`)

Write `nchw_to_nc1hwc0(x, c0)`: from `(N, C, H, W)` to `(N, C1, H, W, C0)` with `C1 = ⌈C/C0⌉`. Channel `c`
goes to block `c // C0`, lane `c % C0`; the lanes past the last real channel hold zeros.
(Lecture recipe for aligned C: `reshape([N, C1, C0, H, W]).transpose([0, 1, 3, 4, 2])`.)"""),
    (CODE, """\
@exercise("1.2")
def nchw_to_nc1hwc0(x, c0):
    \"\"\"Return x (N, C, H, W) as (N, ceil(C/c0), H, W, c0), channels zero-padded to a multiple of c0.\"\"\"
    raise NotImplementedError("exercise 1.2: pad C to C1*c0, split it into (C1, c0), move c0 last")"""),
    (EXERCISE_DEPENDENT, """\
check("1.2", nchw_to_nc1hwc0)"""),
    (EXERCISE_DEPENDENT, """\
x = np.arange(1, 1 + 1 * 5 * 2 * 2).reshape(1, 5, 2, 2)
y = nchw_to_nc1hwc0(x, 4)
print("NCHW", x.shape, "-> NC1HWC0", y.shape)
print("block 1 (channel 4 + three padding lanes), pixel (0, 0):", y[0, 1, 0, 0])
print("back to NCHW equals x:", np.array_equal(layout.nc1hwc0_to_nchw(y, 5), x))"""),
    (MD, """\
## 3. Bits (比特位宽)

A binary float is a sign S, an exponent field E and a mantissa field M (尾数). With bias B = 2^(e−1) − 1,
a **normal** number (规格化) is (−1)^S · 2^(E−B) · (1 + M), a **subnormal** one (非规格化, E = 0) is
(−1)^S · 2^(1−B) · M, and the all-ones exponent is reserved for inf and NaN (特殊值). The lecture's example:"""),
    (CODE, """\
fields = bits.decompose(26.0, "fp32")
print(fields.bit_string)
print(fields.formula(), "=", fields.value, f"({fields.kind})")
print()
for name in ["fp32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2"]:
    f = bits.decompose(26.0, name)
    print(f"26.0 in {name:9s} {f.bit_string:36s} = {f.value}")"""),
    (MD, """\
Note the last line: with only 2 mantissa bits, E5M2 can hold 24 or 28 but not 26. 26 lies exactly half-way,
and the tie goes to the *even* mantissa (1.10₂ · 2⁴ = 24).

The formats trade range (exponent bits) for precision (mantissa bits). BF16 keeps FP32's 8 exponent
bits — the same range — with only 7 mantissa bits; FP16 has more precision but overflows above 65504.
The two FP8 formats of the OCP standard split 8 bits differently: **E4M3** gives up inf and keeps only
S.1111.111 as NaN, so S.1111.110 = 448 is a number; **E5M2** follows the IEEE rules.

Rounding to nearest keeps the relative error below the *unit roundoff* u = 2^−(m+1). The table rounds
2000 fp32 samples spread over each format's normal range and measures it (the fp32 row is zero: the
samples are fp32 values already):"""),
    (CODE, """\
print(bits.format_rounding_table(bits.rounding_error_table(samples=2000, seed=0)))
print()
print("448 in e4m3:", bits.decompose(448.0, "fp8_e4m3"))
print("464 in e4m3:", bits.decompose(464.0, "fp8_e4m3"), " <- a tie, rounds to even (down)")
print("465 in e4m3:", bits.decompose(465.0, "fp8_e4m3"), " <- overflow: no inf, so NaN")"""),
    (MD, """\
### The visual moment: flip one bit

Each button is one bit: red = sign, blue = exponent, green = mantissa. Click any of them and the value is
decoded again. Flip the lowest exponent bit and the value halves or doubles; flip the top one and 26
becomes a number near 10^−37 (or inf, from 1.0). Type a value, or switch the format to see it rounded."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
bit_view = BitView(26.0, "fp32")
bit_view"""),
    (CODE, """\
print(bit_view.summary())
bit_view.flip(23)     # the lowest exponent bit: 131 -> 130, so 26 -> 13
print(bit_view.summary())
bit_view.flip(30)     # the highest exponent bit: 130 -> 2
print(bit_view.summary())
bit_view.value_input.value = 0.1        # typing a value: 0.1 has no exact binary form
print(bit_view.summary())
bit_view.format_picker.value = "bf16"   # the same 0.1 rounded into bf16: 7 mantissa bits left
print(bit_view.summary())"""),
    (MD, """\
### Exercise 1.3 — FP32 → BF16 with round-to-nearest-even (`fp32_to_bf16_bits`)

A BF16 pattern is the top half of an FP32 pattern, so converting means dropping the low 16 bits of the
fp32 bits `u`; the question is how to round when you drop them. Plain truncation (the lecture's "take the first 16 bits") always rounds toward zero, a
bias that adds up over millions of gradient updates. Round to nearest, ties to even (RNE):

- if the 16 dropped bits are below 0x8000, keep; above, round up; exactly 0x8000 (a tie), round so the kept
  part becomes even;
- NaN must stay NaN (and quiet): rounding a NaN whose payload sits in the low bits would give inf;
- overflow should give inf (it falls out of the arithmetic).

Write `fp32_to_bf16_bits(x)` on **uint32 bit arithmetic**: `x` is a float32 array, return the uint16 bf16
patterns, same shape. Hint: `u = x.view(np.uint32)`; beware that `u + something` can overflow uint32."""),
    (CODE, """\
@exercise("1.3")
def fp32_to_bf16_bits(x):
    \"\"\"Round float32 values to bf16 (round to nearest, ties to even); return uint16 bit patterns.\"\"\"
    raise NotImplementedError("exercise 1.3: view x as uint32, round the low 16 bits to nearest-even, keep NaNs")"""),
    (EXERCISE_DEPENDENT, """\
check("1.3", fp32_to_bf16_bits)"""),
    (MD, """\
Why bother with ties-to-even? Round 100 000 values into bf16 with your function and with truncation and
look at the *signed* error: truncation's errors all point the same way (toward zero); RNE's cancel out."""),
    (EXERCISE_DEPENDENT, """\
rng = np.random.default_rng(0)
values = rng.uniform(1.0, 2.0, size=100_000).astype(np.float32)
rne = bits.bf16_bits_to_fp32(fp32_to_bf16_bits(values)).astype(np.float64)
trunc = bits.bf16_bits_to_fp32((values.view(np.uint32) >> 16).astype(np.uint16)).astype(np.float64)
exact = values.astype(np.float64)
print(f"mean signed error, RNE:        {np.mean(rne - exact):+.2e}")
print(f"mean signed error, truncation: {np.mean(trunc - exact):+.2e}   (about -ulp/2 = {-2**-8:+.2e})")
print(f"max |error| RNE {np.max(np.abs(rne - exact)):.2e} <= ulp/2 = {2**-8:.2e}")"""),
    (MD, """\
## What to take away

- A view is (shape, strides, offset). Transpose and slicing only change those numbers; `contiguous()` copies.
- A layout is an address order. Accelerators pick orders that match their compute units: NC1HWC0 feeds
  C0-wide vectors, NZ feeds fractal-sized tiles to the cube unit; padding is the price of alignment.
- A float is three fields. Fewer mantissa bits = larger rounding error (u = 2^−(m+1)); fewer exponent bits =
  smaller range. RNE is unbiased; truncation is not.

Next: lab 02 builds autodiff on these tensors; lab 05 plans where they live in memory; lab 08 feeds them to a
cube unit."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab01")


if __name__ == "__main__":
    labcells.main(CELLS, "lab01", DEFAULT_OUT, sys.argv)
