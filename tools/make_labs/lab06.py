"""Write labs/06_kernels.ipynb (lab 06 — kernels: im2col, Winograd and the CUDA thread/memory hierarchy).

Usage:  .venv/bin/python tools/make_labs/lab06.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):  make run-labs ONLY=06
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "06_kernels.ipynb"

# Quantities the text states that no cell prints (tests/labs/test_lab_content.py checks them).
QUOTED: dict = {}


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 06 — Kernels: im2col, Winograd and the CUDA thread/memory hierarchy (算子实现与 CUDA 编程模型)

An operator in a graph is a mathematical function; a **kernel** (核函数) is the code that computes it on one
device. The same convolution can be computed many ways, and the fastest depends on the layer: its kernel size,
stride, channel counts and groups. This lab takes convolution apart on the CPU — the direct loops, **im2col**
(图像到列) + GEMM, **Winograd**'s minimal filtering, depthwise and 1×1 convolutions — and then writes GPU
kernels in the **CUDA programming model**, where threads are organised grid → block → thread and memory
global → shared → registers.

**Lectures followed** (ZOMI's *AISystem* course): `04Inference/06Kernel` — 02Conv, 03Im2col, 04Winograd (the
transform matrices Bᵀ, G, Aᵀ), 05Qnnpack, 06Memory; `01Foundation/05Matrix` (why everything becomes a GEMM);
and the lecture *AI 系统组成&生态*, which names the CUDA thread and memory hierarchies. Published work used:
Lavin & Gray, *Fast Algorithms for Convolutional Neural Networks* (CVPR 2016) for Winograd's F(m×m, r×r);
Chellapilla et al. (2006) for im2col + GEMM; NVIDIA's *CUDA C++ Programming Guide* for the launch limits and
the 32 shared-memory banks.

**Goals.** After this lab you can
- write im2col for an NHWC batch and say why its matrix is about KH·KW times the input;
- derive Winograd F(2×2,3×3) from Bᵀ, G, Aᵀ and count its multiplications against the direct loops;
- read a kernel-selection rule (which algorithm for which layer, and why) and see its accuracy cost;
- write a shared-memory tiled matrix multiply with `numba.cuda`, and count what tiling saves in global loads.

**Exercises.** 6.1 `im2col_nhwc` · 6.2 `winograd_tile` · 6.3 `make_tiled_matmul`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or what went
wrong. The GPU kernels run under numba's **CUDA simulator** on a CPU (one Python thread per CUDA thread); on a
machine with an NVIDIA GPU the same code runs for real."""),
    (CODE, """\
import numpy as np

import aisys
import aisys.nn.functional as F
from aisys import kernels
from aisys.kernels import cuda as gpu          # switches numba to its CUDA simulator when there is no GPU
from numba import cuda, float32                # the real numba.cuda API, which your kernel uses
from aisys.framework.dispatch import DISPATCHER
from aisys.labkit import check, exercise
from widgets.kernels import Im2colView, KernelCompare, ThreadGridView

print("CUDA simulator:", gpu.SIMULATOR)"""),
    (MD, """\
## 1. The direct convolution and its cost

A 2-D convolution layer (as every framework computes it, a *cross-correlation*) slides each of O filters of
size C × KH × KW over the padded input:

$$y[n, o, oh, ow] = \\sum_{c}\\sum_{kh}\\sum_{kw} x[n, c,\\; oh\\cdot s - p + kh\\cdot d,\\; ow\\cdot s - p + kw\\cdot d]\\;
w[o, c, kh, kw]$$

Seven nested loops, one multiply-add in the middle. `kernels.op_count` counts what each algorithm does on a
layer without running it: multiplications, additions, the extra workspace it allocates, and the bytes it moves.
Here is a ResNet-18 layer (64 → 64 channels, 3×3, on a 56×56 map, batch 1):"""),
    (CODE, """\
resnet = dict(x_shape=(1, 64, 56, 56), w_shape=(64, 64, 3, 3), padding=1)
for alg in ["direct", "im2col", "winograd_2x2", "winograd_4x4"]:
    n = kernels.op_count(alg, **resnet)
    print(f"{alg:13s} {n['mults'] / 1e6:7.1f} M multiplications   workspace {n['workspace_bytes'] / 2**20:6.2f} MiB   "
          f"moves {n['bytes_moved'] / 2**20:6.2f} MiB")"""),
    (MD, """\
The direct loops need no workspace but use the cache poorly; the other algorithms trade memory or accuracy for
speed. All of them are in `kernels.conv2d(x, w, ..., algorithm=...)` and give the same result:"""),
    (CODE, """\
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
ref = kernels.conv2d_reference(x, w, padding=1)          # float64 ground truth
for alg in ["direct", "im2col", "winograd_2x2", "winograd_4x4"]:
    y = kernels.conv2d(x, w, padding=1, algorithm=alg)
    print(f"{alg:13s} the float64 result to 1e-3 relative: {np.abs(y - ref).max() < 1e-3 * np.abs(ref).max()}")"""),
    (MD, """\
## 2. im2col: a convolution becomes one GEMM

**im2col** copies the receptive field of every output pixel into one row of a matrix. For an **NHWC** batch
(channels last, the layout of mobile inference engines and of the lecture), row `(n·OH + oh)·OW + ow` holds,
tap by tap (kh outer, kw inner) and channel by channel, the input values that output pixel reads — zeros where
the window hangs over the padding. The matrix is **(N·OH·OW) × (KH·KW·C)**; the filters reshaped to
(KH·KW·C) × O multiply it in one GEMM, which BLAS runs near the machine's peak. (06Kernel/03Im2col writes the
shape as (OH·OW) × (N·KH·KW·IC): the batch belongs to the rows, each row is one pixel of one image.)

The price is memory: each input value is copied once per tap that reads it, about KH·KW times.

### Exercise 6.1 — im2col for an NHWC batch
Write `im2col_nhwc(x, kernel_size, stride=1, padding=0, dilation=1)`: `x` is (N, H, W, C); `kernel_size`,
`stride`, `padding` and `dilation` are ints or (h, w) pairs. Output pixel (oh, ow), tap (kh, kw) reads input
row `oh·stride − padding + kh·dilation` (and likewise for columns). Return the (N·OH·OW, KH·KW·C) matrix."""),
    (CODE, """\
@exercise("6.1")
def im2col_nhwc(x, kernel_size, stride=1, padding=0, dilation=1):
    \"\"\"The (N·OH·OW) × (KH·KW·C) im2col matrix of an NHWC batch (rows: output pixels; columns: (kh, kw, c)).\"\"\"
    raise NotImplementedError("exercise 6.1: pad with zeros, then copy each tap's strided window into its columns")"""),
    (EXERCISE_DEPENDENT, """\
check("6.1", im2col_nhwc)"""),
    (MD, """\
Your matrix, drawn: step the output pixel and watch its input patch (red, left) and its row (right). Pixels at
the border read padding (grey)."""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
xs = np.arange(2 * 6 * 6 * 2, dtype=np.float32).reshape(2, 6, 6, 2) % 7
record = kernels.im2col_record(xs, (3, 3), stride=1, padding=1, im2col_fn=im2col_nhwc)
Im2colView(record)"""),
    (EXERCISE_DEPENDENT, """\
print(f"im2col of a {xs.shape} batch with a 3×3 kernel: {record.cols.shape}, "
      f"{record.expansion:.2f}x the input's values")"""),
    (MD, """\
## 3. Winograd: fewer multiplications per output

Winograd's minimal filtering computes m outputs of an r-tap filter with m + r − 1 multiplications instead of
m·r. For F(2,3), four inputs d and three taps g give two outputs:

$$y = A^\\top\\big[(G\\,g) \\odot (B^\\top d)\\big]$$

Bᵀ and Aᵀ hold only 0 and ±1 (additions), and G g depends only on the filter, so it is computed once per
filter. The element-wise product ⊙ is where the multiplications are. The matrices' shapes: Bᵀ is
(m+r−1)×(m+r−1), G is (m+r−1)×r and **Aᵀ is m×(m+r−1)** — 04Winograd states (m+r−1)×m, but its own F(2,3)
matrix has two rows and four columns:"""),
    (CODE, """\
BT, G, AT = kernels.winograd_matrices(2)
print("Bᵀ", BT.shape, "\\n", BT, "\\nG", G.shape, "\\n", G, "\\nAᵀ", AT.shape, "\\n", AT)
d, g = np.array([1.0, 2.0, -1.0, 3.0]), np.array([0.5, -1.0, 2.0])
y, mults = kernels.winograd_1d(d, g)
print(f"\\nF(2,3): {y} with {mults} multiplications; direct: {np.correlate(d, g, 'valid')} with "
      f"{2 * 3} multiplications")"""),
    (MD, """\
Nesting F(2,3) in both dimensions gives **F(2×2,3×3)**: a 4×4 input tile d and a 3×3 filter g give a 2×2
output tile,

$$Y = A^\\top\\big[(G\\,g\\,G^\\top) \\odot (B^\\top d\\,B)\\big]A,$$

with the same three matrices. The element-wise product of two 4×4 matrices is the only place data meets weights.

### Exercise 6.2 — F(2×2,3×3) on one tile
Write `winograd_tile(d, g)`: `d` is a 4×4 tile, `g` a 3×3 filter. Return `(Y, mults)`: the 2×2 output of
correlating d with g, computed with Bᵀ, G and Aᵀ from `kernels.winograd_matrices(2)`, and the number of
general multiplications you performed (multiplying by the constant matrices does not count: in a real kernel
those are additions and shifts). Compare it with the direct count, 2·2·9."""),
    (CODE, """\
@exercise("6.2")
def winograd_tile(d, g):
    \"\"\"F(2×2,3×3): (the 2×2 outputs of correlating the 4×4 tile d with the 3×3 filter g, multiplications).\"\"\"
    raise NotImplementedError("exercise 6.2: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, and count the ⊙ products")"""),
    (EXERCISE_DEPENDENT, """\
check("6.2", winograd_tile)"""),
    (MD, """\
A whole layer is tiled the same way: 2×2 output tiles whose 4×4 input tiles overlap by two. Your tile function,
run over an 8×8 image, against the direct result:"""),
    (EXERCISE_DEPENDENT, """\
img, filt = rng.standard_normal((10, 10)), rng.standard_normal((3, 3))
out, total = np.zeros((8, 8)), 0
for i in range(0, 8, 2):
    for j in range(0, 8, 2):
        tile, m = winograd_tile(img[i:i + 4, j:j + 4], filt)
        out[i:i + 2, j:j + 2] = tile
        total += m
direct = kernels.conv2d_reference(img[None, None], filt[None, None])[0, 0]
print(f"equal to the direct result: {np.allclose(out, direct)}; multiplications: {total} with Winograd, {8 * 8 * 9} direct "
      f"({8 * 8 * 9 / total:.2f}x fewer)")"""),
    (MD, """\
## 4. Which algorithm for which layer

Fewer multiplications is not the whole story. Winograd's transforms cost additions and memory traffic, and its
constants (up to 1/24 in F(4×4,3×3)) amplify rounding: the bigger the tile, the fewer the multiplications and
the larger the error. im2col pays in workspace. Depthwise layers (groups = channels) have nothing to gain from
a GEMM whose inner dimension is only KH·KW. `kernels.compare_algorithms` runs every algorithm that supports a
layer and measures all of it; `KernelCompare` draws the bars (times are this machine's). Switch the layer and the
error's precision: the multiplication bars fall from direct to F(4×4,3×3) while the error bars grow."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
layers = {
    "3×3, 32→32 channels": kernels.compare_algorithms((1, 32, 16, 16), (32, 32, 3, 3), padding=1),
    "3×3 stride 2": kernels.compare_algorithms((1, 32, 16, 16), (32, 32, 3, 3), stride=2, padding=1),
    "depthwise 3×3": kernels.compare_algorithms((1, 32, 16, 16), (32, 1, 3, 3), padding=1, groups=32),
    "1×1, 32→64": kernels.compare_algorithms((1, 32, 16, 16), (64, 32, 1, 1)),
}
KernelCompare(layers)"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
errs = {alg: kernels.numerical_error(alg, (1, 32, 16, 16), (32, 32, 3, 3), padding=1, dtype="float16")
        for alg in ["im2col", "winograd_2x2", "winograd_4x4"]}
for alg, e in errs.items():
    print(f"float16 relative error of {alg:13s} {e:.1e}")"""),
    (CODE, """\
print("in float16, F(4×4,3×3)'s error exceeds F(2×2,3×3)'s, which exceeds im2col's:",
      errs["winograd_4x4"] > errs["winograd_2x2"] > errs["im2col"])"""),
    (MD, """\
`kernels.select_kernel` is the dispatch rule: Winograd F(2×2,3×3) only for 3×3, stride-1, dilation-1
convolutions in float32 or float64 with enough channels and output tiles to pay for its transforms; depthwise for
groups = channels; a 1×1 convolution as one GEMM on the image itself; im2col + GEMM for everything else. On
ResNet-18's 3×3 layers Winograd's 16 GEMMs plus transforms beat im2col's one big BLAS GEMM (and PyTorch's
one-thread convolution; `benchmarks/bench_conv.py --kernels` measures them), except where the image is so
small that its transformed filters, 16/9 of the weights, are read for only a few tiles. Why never F(4×4,3×3),
which is faster still? Its error: the accuracy cell above shows it in float16, and in float32 it is about 20×
im2col's. Fewer multiplications is a means, not the goal. Each choice comes with its reason:"""),
    (CODE, """\
table = [((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
         ((1, 512, 7, 7), (512, 512, 3, 3), dict(padding=1)),
         ((32, 512, 7, 7), (512, 512, 3, 3), dict(padding=1)),
         ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1, stride=2, prefer_winograd=True)),
         ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1, dtype="float16", prefer_winograd=True)),
         ((1, 8, 32, 32), (8, 8, 3, 3), dict(padding=1, prefer_winograd=True)),
         ((1, 64, 56, 56), (64, 1, 3, 3), dict(padding=1, groups=64)),
         ((1, 64, 56, 56), (128, 64, 1, 1), dict(stride=2)),
         ((1, 6, 14, 14), (16, 6, 5, 5), dict())]
for xs_, ws_, attrs in table:
    alg, why = kernels.select_kernel(xs_, ws_, **attrs)
    print(f"N={xs_[0]:<2d} {str(ws_):16s} {str(attrs):58s} -> {alg:13s} {why}")"""),
    (MD, """\
`mode="autotune"` instead times every eligible algorithm once per shape and remembers the winner — what cuDNN's
benchmark mode does. And eager execution uses all this: `F.conv2d` (and the two convolutions of its backward
pass) are registered with the framework's dispatcher, which now resolves to `aisys.kernels.conv2d`, the selected
algorithm inside:"""),
    (CODE, """\
xt = aisys.randn(1, 64, 8, 8, requires_grad=True)
wt = aisys.randn(64, 64, 3, 3, requires_grad=True)
with DISPATCHER.recording() as log:
    F.conv2d(xt, wt, padding=1).sum().backward()
for r in log:
    if r.op.startswith("conv2d"):
        print(f"{r.op:23s} -> {r.kernel_name}")
print("forward algorithm:", kernels.select_kernel(tuple(xt.shape), tuple(wt.shape), padding=1)[0])
with kernels.autotuned():                    # time the candidates once for this shape, then use the winner
    kernels.select_kernel(tuple(xt.shape), tuple(wt.shape), padding=1)
winner, timed = next(iter(kernels.autotune_cache().values()))
print("autotune timed:", ", ".join(timed), "- and remembers the fastest for this shape")"""),
    (MD, """\
## 5. The CUDA programming model

A GPU kernel is one function run by many **threads** at once. A launch `kernel[grid, block](args)` starts
`grid` **blocks** of `block` threads each; inside the kernel, `cuda.blockIdx`, `cuda.blockDim` and
`cuda.threadIdx` tell a thread who it is. The threads of one block run on one streaming multiprocessor, share
its fast on-chip **shared memory** (`cuda.shared.array`), wait for each other at `cuda.syncthreads()`, and
execute in **warps** of 32 in lockstep. All blocks see the large, slow **global memory**; each thread keeps its
scalars in **registers**. A launch must fit the device: at most 1024 threads per block, and the shared memory a
block asks for must fit what one multiprocessor has."""),
    (CODE, """\
a = np.arange(10, dtype=np.float32)
print("vector_add:", gpu.vector_add(a, a, block=4))          # 3 blocks of 4 threads; the last 2 threads idle
print("reduce_sum:", gpu.reduce_sum(np.ones(100), block=16), "(a tree in shared memory)")
try:
    gpu.check_launch(grid=(4, 4), block=(64, 32), device="A100")
except gpu.LaunchError as err:
    print("LaunchError:", err)"""),
    (MD, """\
The naive matrix multiply gives each thread one output element: it reads a row of A and a column of B straight
from global memory — 2K loads per thread, and every value of A is read again by every thread of its row.
`gpu.profile` runs a kernel under the simulator and counts every access: per thread, per block, in total."""),
    (CODE, """\
A = rng.standard_normal((8, 8)).astype(np.float32)
B = rng.standard_normal((8, 8)).astype(np.float32)
naive = gpu.profile(gpu.matmul, A, B, block=4)
print(naive.summary())
print("most any thread did:", naive.max_per_thread())"""),
    (MD, """\
**Tiling** fixes that. A block of T×T threads computes a T×T tile of C. In each of ⌈K/T⌉ phases, every
thread loads *one* element of A's current tile and *one* of B's into shared memory, the block synchronizes, and
each thread adds the T products of its row of the A tile and its column of the B tile — read from shared
memory. Each global value is then loaded once per block instead of once per thread that needs it: global
loads fall by the tile factor T.

### Exercise 6.3 — a shared-memory tiled matmul
Write `make_tiled_matmul(T)`: inside, define a kernel `kernel(A, B, C)` decorated with `@cuda.jit` and return
it. It is launched with T×T blocks over C (grid `(⌈N/T⌉, ⌈M/T⌉)`, `x` along columns): thread (tx, ty) of
block (bx, by) computes `C[by·T + ty, bx·T + tx]`. Allocate the tiles with
`cuda.shared.array((T, T), float32)`; write 0 into a tile where A or B has no element (M, N and K need not be
multiples of T). The check runs it under the simulator, compares C with numpy, and counts the global loads."""),
    (CODE, """\
@exercise("6.3")
def make_tiled_matmul(T):
    \"\"\"A numba.cuda kernel(A, B, C) computing C = A @ B with T×T thread blocks and T×T shared-memory tiles.\"\"\"
    raise NotImplementedError("exercise 6.3: define a @cuda.jit kernel that stages T×T tiles of A and B in "
                              "shared memory, and return it")"""),
    (EXERCISE_DEPENDENT, """\
check("6.3", make_tiled_matmul)"""),
    (MD, """\
Your kernel, profiled on the same 8×8 product, next to the naive one. Each square of C is coloured by the block
that computed it and labelled with the thread's id inside the block; pick an output element with the sliders to
see which elements of A and B its thread loaded from global memory, and switch kernels to compare."""),
    (EXERCISE_DEPENDENT, """\
T = 4
mine = make_tiled_matmul(T)


def run_mine():
    dA, dB, dC = gpu.to_device(A, "A"), gpu.to_device(B, "B"), gpu.to_device(np.zeros((8, 8), np.float32), "C")
    gpu.launch(mine, (8 // T, 8 // T), (T, T), dA, dB, dC, shared_bytes=2 * T * T * 4)
    return dC.copy_to_host()


tiled = gpu.profile(run_mine)
print(tiled.summary())
print(f"global loads: naive {naive.global_loads}, tiled {tiled.global_loads} "
      f"({naive.global_loads / tiled.global_loads:.0f}x fewer, the tile factor T = {T})")"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
ThreadGridView({"naive": naive, f"tiled (T={T})": tiled})"""),
    (MD, """\
Shared memory is split into 32 **banks** of 4-byte words; the 32 threads of a warp can read 32 different banks in
one transaction, but two *different* words in the same bank are served one after the other (a **bank
conflict**; the same word is broadcast). The profile counts them: your tiles are read along rows (sA) and with
one word per thread (sB), so there are none. A kernel whose threads read `s[32·lane]` would serialize all 32.

**What you have seen.** The same convolution computed seven ways, each with its price in multiplications,
workspace and accuracy, and a rule that picks one per layer; and the GPU's two hierarchies — threads grid →
block → warp → thread, memory global → shared → registers — in a kernel whose global traffic you cut by the tile
factor. Next, lab 08 puts these counts on a roofline: how many operations per byte a kernel does decides whether
it is limited by compute or by memory."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab06")


if __name__ == "__main__":
    labcells.main(CELLS, "lab06", DEFAULT_OUT, sys.argv)
