"""Checks for lab 06 — kernels: im2col, Winograd and the CUDA thread/memory hierarchy.

6.1 ``im2col_nhwc(x, kernel_size, stride=1, padding=0, dilation=1)``: the (N·OH·OW) × (KH·KW·C) matrix of an
    NHWC batch; cases from a single 3×3 image up to batches with padding, strides and dilations, then the
    convolution as one GEMM on it equals the float64 reference.
6.2 ``winograd_tile(d, g)``: F(2×2,3×3) on one 4×4 tile with Bᵀ, G, Aᵀ; an identity filter, a tile of ones,
    random tiles against the direct correlation, and the 16 multiplications it counts.
6.3 ``make_tiled_matmul(T)``: a numba.cuda kernel with T×T shared-memory tiles, run under the CUDA simulator
    and profiled: equal to numpy on square, non-square and ragged shapes, and global loads cut by T.

Each check diagnoses a wrong answer by comparing it with what each listed mistake gives on the same case.
"""
from __future__ import annotations

import numpy as np

from aisys.labkit import Checker, register
from aisys.labkit.learner import call as _call


def _diagnose(got, mistakes, case, otherwise: str) -> str:
    """The words of the listed mistake whose output on ``case`` equals ``got`` (else ``otherwise``)."""
    for fn, words in mistakes:
        try:
            value = fn(*case)
        except Exception:
            continue
        if isinstance(value, tuple) and isinstance(got, tuple) and len(value) == len(got):
            same = all(np.shape(a) == np.shape(b) and np.allclose(a, b) for a, b in zip(value, got))
        else:
            same = np.shape(value) == np.shape(got) and np.allclose(value, got)
        if same:
            return words
    return otherwise


# ---------------------------------------------------------------------------------------------
# 6.1 im2col for NHWC
# ---------------------------------------------------------------------------------------------

def _pairs(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _geometry(x, k, s, p, d):
    (KH, KW), (sh, sw), (ph, pw), (dh, dw) = _pairs(k), _pairs(s), _pairs(p), _pairs(d)
    N, H, W, C = x.shape
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    return N, H, W, C, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW


def _patches(x, k, s, p, d, pad_mode="zeros", order="khkwc"):
    """The (N, OH, OW, taps...) patches, with the knobs the mistakes turn."""
    N, H, W, C, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW = _geometry(x, k, s, p, d)
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="constant" if pad_mode == "zeros" else "edge")
    out = np.empty((N, OH, OW, KH, KW, C), x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            out[:, :, :, kh, kw] = xp[:, kh * dh:kh * dh + sh * (OH - 1) + 1:sh, kw * dw:kw * dw + sw * (OW - 1) + 1:sw]
    if order == "ckhkw":
        out = out.transpose(0, 1, 2, 5, 3, 4)
    elif order == "kwkhc":
        out = out.transpose(0, 1, 2, 4, 3, 5)
    return out


def _im2col_lecture_shape(x, kernel_size, stride=1, padding=0, dilation=1):
    """06Kernel/03Im2col's (OH·OW) × (N·KH·KW·C): the images side by side in the columns."""
    P = _patches(x, kernel_size, stride, padding, dilation)
    N, OH, OW = P.shape[:3]
    return P.reshape(N, OH * OW, -1).transpose(1, 0, 2).reshape(OH * OW, -1)


def _im2col_channels_first(x, kernel_size, stride=1, padding=0, dilation=1):
    P = _patches(x, kernel_size, stride, padding, dilation, order="ckhkw")
    return P.reshape(P.shape[0] * P.shape[1] * P.shape[2], -1)


def _im2col_kw_outer(x, kernel_size, stride=1, padding=0, dilation=1):
    P = _patches(x, kernel_size, stride, padding, dilation, order="kwkhc")
    return P.reshape(P.shape[0] * P.shape[1] * P.shape[2], -1)


def _im2col_edge_padding(x, kernel_size, stride=1, padding=0, dilation=1):
    P = _patches(x, kernel_size, stride, padding, dilation, pad_mode="edge")
    return P.reshape(P.shape[0] * P.shape[1] * P.shape[2], -1)


def _im2col_ignores_padding(x, kernel_size, stride=1, padding=0, dilation=1):
    P = _patches(x, kernel_size, stride, 0, dilation)
    return P.reshape(P.shape[0] * P.shape[1] * P.shape[2], -1)


def _im2col_ignores_stride(x, kernel_size, stride=1, padding=0, dilation=1):
    P = _patches(x, kernel_size, 1, padding, dilation)
    return P.reshape(P.shape[0] * P.shape[1] * P.shape[2], -1)


def _im2col_ignores_dilation(x, kernel_size, stride=1, padding=0, dilation=1):
    P = _patches(x, kernel_size, stride, padding, 1)
    return P.reshape(P.shape[0] * P.shape[1] * P.shape[2], -1)


_MISTAKES_61 = [
    (_im2col_lecture_shape, "the batch belongs to the rows: (N·OH·OW) × (KH·KW·C); the lecture's "
                            "(OH·OW) × (N·KH·KW·IC) is an erratum"),
    (_im2col_channels_first, "inside a row the order is (kh, kw, c), channels fastest (NHWC), not (c, kh, kw)"),
    (_im2col_kw_outer, "taps go row by row: kh outer, kw inner"),
    (_im2col_edge_padding, "padding is zeros, not copies of the edge"),
    (_im2col_ignores_padding, "padding adds rows and columns of zeros around the image (OH and OW grow)"),
    (_im2col_ignores_stride, "stride: output pixel oh starts at input row oh·stride"),
    (_im2col_ignores_dilation, "dilation: tap kh reads input row oh·stride − padding + kh·dilation"),
]

_BAD_61 = [(f"aisys.labkit.checks.lab06:{fn.__name__}", words.split(":")[0].split(";")[0])
           for fn, words in _MISTAKES_61]


@register("6.1", title="im2col for an NHWC batch", lab="06_kernels", reference="aisys.kernels.conv:im2col",
          bad=_BAD_61)
def _check_6_1(fn, c: Checker):
    from aisys.kernels import conv2d_reference, im2col as reference

    rng = c.rng
    cases = [
        ("one 3×3 image, one channel, a 2×2 kernel", (1, 3, 3, 1), (2, 2), 1, 0, 1),
        ("two images of 4×5 with 3 channels, a 2×3 kernel", (2, 4, 5, 3), (2, 3), 1, 0, 1),
        ("padding (1, 2)", (2, 4, 5, 3), (3, 3), 1, (1, 2), 1),
        ("stride (2, 1)", (1, 6, 5, 2), (2, 2), (2, 1), 0, 1),
        ("dilation (2, 1)", (1, 6, 6, 2), (2, 2), 1, 0, (2, 1)),
        ("everything at once", (3, 7, 6, 4), (3, 2), (2, 1), (1, 2), (1, 2)),
    ]
    for what, shape, k, s, p, d in cases:
        x = (rng.standard_normal(shape) + 3.0).astype(np.float32)     # no zeros: padding is visible
        expected = reference(x, k, s, p, d)
        got, err = _call(fn, x, k, s, p, d)
        label = f"{what}: im2col_nhwc(x{shape}, kernel_size={k}, stride={s}, padding={p}, dilation={d})"
        if err is not None:
            c.fail(label, expected=f"an array of shape {expected.shape}", got=err,
                   hint="build the zero-padded image, then copy each tap's strided window into its columns")
        got = np.asarray(got)
        hint = _diagnose(got, _MISTAKES_61, (x, k, s, p, d),
                         "row (n·OH + oh)·OW + ow holds x at (oh·stride − padding + kh·dilation, ...) for each "
                         "(kh, kw, c), channels fastest, zeros outside the image")
        c.equal(got.shape, expected.shape, f"{label}: shape (N·OH·OW, KH·KW·C)", hint=hint)
        c.close(got, expected, label, rtol=0, atol=0, hint=hint)
    # the convolution as one GEMM on it
    x = rng.standard_normal((2, 6, 7, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    cols = np.asarray(fn(x, (3, 2), (1, 2), (1, 0), 1))
    y = (cols @ w.transpose(2, 3, 1, 0).reshape(-1, 4)).reshape(2, 6, 3, 4)
    ref = conv2d_reference(x.transpose(0, 3, 1, 2), w, stride=(1, 2), padding=(1, 0)).transpose(0, 2, 3, 1)
    c.close(y, ref, "im2col(x) @ W (KH·KW·C × O) equals the convolution", rtol=1e-4, atol=1e-4)
    c.close(cols.size / x.size, 3 * 2 * 6 * 3 / (6 * 7), "expansion factor: KH·KW·OH·OW / (H·W), ≈ KH·KW")


# ---------------------------------------------------------------------------------------------
# 6.2 Winograd F(2×2,3×3) on one tile
# ---------------------------------------------------------------------------------------------

def _wino_parts():
    from aisys.kernels import winograd_matrices
    return winograd_matrices(2, 3)


def _wino_AT_transposed(d, g):
    BT, G, AT = _wino_parts()
    A_as_lecture = AT.T                          # (u+k−1)×u, as 04Winograd.md states it
    M = (G @ g @ G.T) * (BT @ d @ BT.T)
    return A_as_lecture @ M @ A_as_lecture.T, 16


def _wino_one_sided(d, g):
    BT, G, AT = _wino_parts()
    return AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)), 16


def _wino_matmul(d, g):
    BT, G, AT = _wino_parts()
    return AT @ ((G @ g @ G.T) @ (BT @ d @ BT.T)) @ AT.T, 16


def _wino_BT_both_sides(d, g):
    BT, G, AT = _wino_parts()
    return AT @ ((G @ g @ G.T) * (BT @ d @ BT)) @ AT.T, 16


def _wino_counts_direct(d, g):
    BT, G, AT = _wino_parts()
    return AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T, 36


def _wino_convolution(d, g):
    BT, G, AT = _wino_parts()
    gf = np.asarray(g)[::-1, ::-1]
    return AT @ ((G @ gf @ G.T) * (BT @ d @ BT.T)) @ AT.T, 16


def _wino_counts_transforms(d, g):
    BT, G, AT = _wino_parts()
    return AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T, 16 + 2 * 4 * 4 * 4 + 2 * 4 * 3 * 3 + 2 * 2 * 4 * 4


_MISTAKES_62 = [
    (_wino_AT_transposed, "Aᵀ is 2×4 (u×(u+k−1)); 04Winograd.md prints its shape transposed"),
    (_wino_one_sided, "the output transform is two-sided: Y = Aᵀ M A"),
    (_wino_matmul, "the product in the middle is elementwise (⊙), not a matrix product"),
    (_wino_BT_both_sides, "the input transform is Bᵀ d B, with B = (Bᵀ)ᵀ on the right"),
    (_wino_counts_direct, "count the multiplications you did: 16 elementwise products (36 is the direct count)"),
    (_wino_convolution, "deep-learning 'convolution' is correlation: do not flip g"),
    (_wino_counts_transforms, "count only the elementwise products: Bᵀ, G, Aᵀ are constants (adds and shifts)"),
]

_BAD_62 = [(f"aisys.labkit.checks.lab06:{fn.__name__}", words.split(":")[0].split(";")[0].split(" (")[0])
           for fn, words in _MISTAKES_62]


@register("6.2", title="Winograd F(2×2,3×3) on one tile", lab="06_kernels",
          reference="aisys.kernels.conv:winograd_tile", bad=_BAD_62)
def _check_6_2(fn, c: Checker):
    from numpy.lib.stride_tricks import sliding_window_view

    def direct(d, g):
        return (sliding_window_view(d, (3, 3)) * g).sum(axis=(2, 3))

    rng = c.rng
    centre = np.zeros((3, 3))
    centre[1, 1] = 1.0
    corner = np.zeros((3, 3))
    corner[0, 2] = 1.0
    cases = [("an identity filter (g = 1 at the centre): Y = d[1:3, 1:3]", np.arange(16.0).reshape(4, 4), centre),
             ("a corner tap g[0, 2] = 1: Y = d[0:2, 2:4] (correlation)", np.arange(16.0).reshape(4, 4) ** 1.5, corner),
             ("a random tile and filter", rng.standard_normal((4, 4)), rng.standard_normal((3, 3)))]
    cases += [(f"random tile #{i + 2}", rng.standard_normal((4, 4)), rng.standard_normal((3, 3))) for i in range(4)]
    for what, d, g in cases:
        got, err = _call(fn, d.copy(), g.copy())
        label = f"{what}: winograd_tile(d 4×4, g 3×3)"
        if err is not None or not isinstance(got, tuple) or len(got) != 2:
            shown = err or f"{type(got).__name__} {got!r}"
            c.fail(label, expected="(Y as a 2×2 array, multiplications)", got=shown,
                   hint="return a pair: the 2×2 output and the count of the ⊙ products" if err is None
                   else _hint_for_error(err))
        Y, mults = got
        hint = _diagnose((np.asarray(Y, float), mults), _MISTAKES_62, (d, g),
                         "Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A with the lecture's Bᵀ (4×4), G (4×3), Aᵀ (2×4)")
        c.close(np.asarray(Y, float), direct(d, g), f"{label}: the 2×2 outputs", rtol=1e-9, atol=1e-9, hint=hint)
        c.equal(int(mults), 16, f"{label}: multiplications counted", hint=hint)
    c.true(16 < 2 * 2 * 9, "16 multiplications per 2×2 output tile instead of 2·2·9 = 36", expected="16 < 36")


def _hint_for_error(err: str) -> str:
    if "shapes" in err or "broadcast" in err or "mismatch" in err or "aligned" in err:
        return ("a shape does not fit: Bᵀ is 4×4, G is 4×3 (so G g Gᵀ is 4×4), Aᵀ is 2×4 (u×(u+k−1); "
                "04Winograd.md prints its shape transposed); Y = Aᵀ M A is 2×2")
    return "Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A"


# ---------------------------------------------------------------------------------------------
# 6.3 a shared-memory tiled matmul in the CUDA model
# ---------------------------------------------------------------------------------------------

_BAD_63 = [("aisys.labkit.checks._lab06_kernels:naive", "global loads were not cut"),
           ("aisys.labkit.checks._lab06_kernels:whole_row_per_thread", "each thread loads ONE value"),
           ("aisys.labkit.checks._lab06_kernels:floor_phases", "ceil(K / T) phases"),
           ("aisys.labkit.checks._lab06_kernels:no_zero_fill", "write 0"),
           ("aisys.labkit.checks._lab06_kernels:swapped_a_tile", "sA[ty, tx]"),
           ("aisys.labkit.checks._lab06_kernels:b_tile_by_tx", "sB[ty, tx]")]

_HINT_63 = ("thread (tx, ty) of block (bx, by) computes C[by·T + ty, bx·T + tx]; in phase p it stores "
            "A[row, p·T + tx] into sA[ty, tx] and B[p·T + ty, col] into sB[ty, tx] (0 where out of range), "
            "syncs, adds Σ_k sA[ty, k]·sB[k, tx], syncs again; ceil(K / T) phases")


@register("6.3", title="A shared-memory tiled matmul in the CUDA model", lab="06_kernels",
          reference="aisys.kernels.cuda.kernels:tiled_matmul_kernel", bad=_BAD_63)
def _check_6_3(fn, c: Checker):
    from aisys.kernels import cuda as gpu

    rng = c.rng
    cases = [("square, K a multiple of T", 4, 4, 4, 2), ("bigger tiles", 8, 8, 8, 4),
             ("non-square", 4, 12, 8, 2), ("ragged: no dimension a multiple of T", 6, 10, 5, 4)]
    for what, M, K, N, T in cases:
        A = rng.standard_normal((M, K)).astype(np.float32)
        B = rng.standard_normal((K, N)).astype(np.float32)
        kernel, err = _call(fn, T)
        label = f"{what}: A {M}×{K} @ B {K}×{N} with T={T}"
        if err is not None or not hasattr(kernel, "__getitem__"):
            c.fail(label, expected="a numba.cuda kernel (a function decorated with @cuda.jit)",
                   got=err or repr(kernel), hint="make_tiled_matmul(T) defines a @cuda.jit kernel inside and returns it")

        def host():
            dA, dB = gpu.to_device(A, "A"), gpu.to_device(B, "B")
            dC = gpu.to_device(np.zeros((M, N), np.float32), "C")
            gpu.launch(kernel, (-(-N // T), -(-M // T)), (T, T), dA, dB, dC, shared_bytes=2 * T * T * 4)
            return dC.copy_to_host()

        rep, err = _call(gpu.profile, host)
        if err is not None:
            c.fail(label, expected="the kernel runs", got=err, hint=_HINT_63 + ("; guard the edges: write 0 into "
                   "the tile where A or B has no element" if "index" in err else ""))
        wrong = ""
        if not np.allclose(rep.result, A @ B, rtol=1e-4, atol=1e-4):
            if K % T and np.allclose(rep.result, A[:, :K - K % T] @ B[:K - K % T], rtol=1e-4, atol=1e-4):
                wrong = "the last, partial tile of K is missing: ceil(K / T) phases, not K // T"
            elif K % T or M % T or N % T:
                wrong = "ragged edges: write 0 into the tile where A or B has no element (stale values stay)"
            else:
                wrong = ("sA[ty, tx] holds A[row, p·T + tx] and sB[ty, tx] holds B[p·T + ty, col]; the product "
                         "is Σ_k sA[ty, k]·sB[k, tx]")
        c.close(rep.result, A @ B, f"{label}: C equals A @ B", rtol=1e-4, atol=1e-4, hint=wrong or _HINT_63)
        phases = -(-K // T)
        if M % T == 0 and N % T == 0 and K % T == 0:
            naive = 2 * M * N * K
            loads = rep.global_loads
            hint = ("each thread loads ONE value of A's tile and ONE of B's per phase (T² threads fill a T×T tile)"
                    if loads > naive // T and rep.shared_stores > 0 else
                    f"global loads were not cut by the tile factor: stage T×T tiles of A and B in shared memory "
                    f"(cuda.shared.array((T, T), float32)) and read the products from there")
            c.equal(loads, naive // T, f"{label}: global loads = 2·M·N·K / T (the naive kernel does {naive})",
                    hint=hint)
            c.equal(rep.shared_loads, 2 * M * N * phases * T, f"{label}: shared loads = 2·M·N·K", hint=_HINT_63)
