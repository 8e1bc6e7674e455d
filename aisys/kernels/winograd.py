"""Winograd F(m×m, 3×3) at full speed (float32/float64): the three transforms in numba, the multiplications as
(m+2)² batched BLAS GEMMs — the form in which Winograd's 2.25× (F(2×2,3×3)) or 4× (F(4×4,3×3)) fewer
multiplications beat a direct or im2col convolution whose GEMM already runs near the CPU's peak.

Per chunk of images (sized so the transformed tiles stay near in cache, but with at least :data:`MIN_TILES`
tiles so the GEMMs are not bound by reading U):

1. input transform, V[ξν, c, tile] = (Bᵀ d B)[ξ, ν] of each (m+2)×(m+2) input tile d: each channel plane is
   copied once into a zero-bordered scratch plane (the padding), its rows combined by Bᵀ over the plane's
   whole width, then the columns by Bᵀ for every tile of a row at once (the loops run over tiles innermost,
   so they vectorize);
2. filter transform, U[ξν, o, c] = (G g Gᵀ)[ξ, ν] (once per call, shared by the chunks; its planes are padded
   apart, :func:`aisys.kernels.workspace.planes`, as are V's and M's);
3. M[ξν] = U[ξν] (O×C) @ V[ξν] (C×tiles): one ``np.matmul`` over the (m+2)² positions — the only general
   multiplications, summed over the input channels inside BLAS;
4. output transform, Y = Aᵀ M A per tile (plus the bias), written straight into the NCHW output.

The constant matrices come from :func:`aisys.kernels.conv.winograd_matrices`; every sum skips their zero
entries, so the transform work is one operation per nonzero coefficient and element, as ``op_count`` counts it.
numba loads on the first call (``cache=True``), never when ``aisys`` is imported.
"""
from __future__ import annotations

import numpy as np

from .workspace import planes, scratch

#: a chunk of images holds about this many bytes of transformed input tiles V (and as much of products M):
#: cache-sized, so the transforms read what the GEMMs just wrote while it is still near ...
TILE_BLOCK_BYTES = 2 * 2**20
#: ... but at least this many tiles: each GEMM reads (and BLAS packs) all of U[ξν] (C×O) once per chunk, so with
#: few tiles (deep layers: 16 or 4 tiles per image) it would be bound by memory, not by multiplications
MIN_TILES = 256


def _combination(row, names, consts) -> str:
    """Source of Σ_j row[j]·names[j] over the nonzero coefficients (±1 as a plain sum or difference)."""
    out = ""
    for c, name in zip(row, names):
        if c == 0:
            continue
        if c in (1, -1):
            term = name
        else:
            if abs(float(c)) not in consts:
                consts[abs(float(c))] = f"k{len(consts)}"
            term = f"{consts[abs(float(c))]} * {name}"
        sign = "-" if c < 0 else "+"
        out += f" {sign} {term}" if out else (f"-{term}" if c < 0 else term)
    return out or "0.0"


def kernel_source(m: int, dtype: str, matrices) -> str:
    """numba source of the three transforms of F(m×m, 3×3) in ``dtype``: every constant-matrix product written
    out term by term over the nonzero coefficients (so the loops, over a plane's width or over channels, run one
    pass each and vectorize); compiled through :func:`aisys.kernels.jit.load_kernel` (cached on disk)."""
    BT, G, AT = (np.asarray(mat, np.float64) for mat in matrices)
    a = m + 2
    consts: dict = {}
    rows = lambda mat, names: [_combination(r, names, consts) for r in mat]       # noqa: E731
    L = []
    # input, per image and channel: the plane copied into a zero-bordered scratch plane (the padding); per tile
    # row, the rows combined by Bᵀ over the plane's width, then the columns for every tile of the row at once
    # (loops over tiles innermost: they vectorize, reading every m-th element)
    L += ["def input_transform(x, V, plane, R, th, tw, ph, pw, n0, n1):",
          "    C, H, W = x.shape[1], x.shape[2], x.shape[3]",
          "    Wp = plane.shape[1]",
          "    for n in range(n0, n1):",
          "        for c in range(C):",
          "            for h in range(H):",
          "                src = x[n, c, h]",
          "                dst = plane[h + ph]",
          "                for q in range(W):",
          "                    dst[q + pw] = src[q]",
          "            for ti in range(th):",
         f"                r0 = ti * {m}",
          "                p0 = ((n - n0) * th + ti) * tw"]
    L += [f"                x{j} = plane[r0 + {j}]" for j in range(a)]
    L += [f"                R{i} = R[{i}]" for i in range(a)]
    L += ["                for q in range(Wp):"]
    L += [f"                    v{j} = x{j}[q]" for j in range(a)]
    L += [f"                    R{i}[q] = {e}" for i, e in enumerate(rows(BT, [f"v{j}" for j in range(a)]))]
    L += [f"                for xi in range({a}):",             # Bᵀ[ν, k] does not depend on ξ: one loop body
          "                    Rx = R[xi]"]
    L += [f"                    V{nu} = V[xi * {a} + {nu}, c, p0:p0 + tw]" for nu in range(a)]
    L += ["                    for tj in range(tw):"]
    L += [f"                        d{k} = Rx[tj * {m} + {k}]" for k in range(a)]
    L += [f"                        V{nu}[tj] = {e}" for nu, e in enumerate(rows(BT, [f"d{k}" for k in range(a)]))]
    # filters: per (o, c), the 3×3 taps in registers: Gw[ξ, l] = Σ_k G[ξ, k]·g[k, l], U[ξν] = Σ_l G[ν, l]·Gw[ξ, l]
    L += ["", "", "def filter_transform(w, U):",
          "    O, C = w.shape[0], w.shape[1]",
          "    for o in range(O):",
          "        wo = w[o]"]
    L += [f"        U{k} = U[{k}, o]" for k in range(a * a)]
    L += ["        for c in range(C):"]
    L += [f"            g{k}{l} = wo[c, {k}, {l}]" for k in range(3) for l in range(3)]
    for l in range(3):
        L += [f"            h{i}{l} = {e}" for i, e in enumerate(rows(G, [f"g{k}{l}" for k in range(3)]))]
    for xi in range(a):
        L += [f"            U{xi * a + nu}[c] = {e}" for nu, e in enumerate(rows(G, [f"h{xi}{l}" for l in range(3)]))]
    # output, per image and output channel: T[i, ν] = Σ_ξ Aᵀ[i, ξ]·M[ξν] for every tile of a tile row, then each
    # output row's m columns per tile, bias added, written straight into NCHW (clipped at the edge)
    L += ["", "", "def output_transform(M, bias, out, T, th, tw, n0, n1):",
          "    O, OH, OW = out.shape[1], out.shape[2], out.shape[3]",
          "    for n in range(n0, n1):",
          "        for o in range(O):",
          "            b = bias[o]",
          "            for ti in range(th):",
          "                p0 = ((n - n0) * th + ti) * tw"]
    L += [f"                for nu in range({a}):"]             # Aᵀ[i, ξ] does not depend on ν: one loop body
    L += [f"                    M{xi} = M[{xi * a} + nu, o, p0:p0 + tw]" for xi in range(a)]
    L += [f"                    T{i} = T[{i * a} + nu]" for i in range(m)]
    L += ["                    for tj in range(tw):"]
    L += [f"                        z{xi} = M{xi}[tj]" for xi in range(a)]
    L += [f"                        T{i}[tj] = {e}" for i, e in enumerate(rows(AT, [f"z{xi}" for xi in range(a)]))]
    L += [f"                for i in range({m}):",
          f"                    r = ti * {m} + i",
          "                    if r >= OH:",
          "                        break"]
    L += [f"                    t{nu} = T[i * {a} + {nu}]" for nu in range(a)]
    L += ["                    dst = out[n, o, r]",
          f"                    full = min(tw, OW // {m})",
          "                    for tj in range(full):"]
    L += [f"                        dst[tj * {m} + {j}] = b + {e}" for j, e in enumerate(rows(AT, [f"t{nu}[tj]" for nu in range(a)]))]
    L += ["                    if full < tw:",
          "                        tj = full"]
    for j, e in enumerate(rows(AT, [f"t{nu}[tj]" for nu in range(a)])):
        L += [f"                        if tj * {m} + {j} < OW:",
              f"                            dst[tj * {m} + {j}] = b + {e}"]
    head = ["import numpy as np", "from numba import njit", "", f"DT = np.{dtype}"]
    head += [f"{name} = DT({value!r})" for value, name in consts.items()]
    body = "\n".join(L).replace("\ndef ", "\n@njit(cache=True, boundscheck=False, error_model='numpy')\ndef ")
    body = "@njit(cache=True, boundscheck=False, error_model='numpy')\n" + body
    return "\n".join(head) + "\n\n\n" + body + "\n"


_TRANSFORMS: dict = {}


def transforms(m: int, dtype, matrices):
    """(input_transform, filter_transform, output_transform) of F(m×m, 3×3) compiled for ``dtype``."""
    key = (m, np.dtype(dtype).name)
    if key not in _TRANSFORMS:
        from .jit import load_kernel                     # numba loads on the first Winograd convolution
        src = kernel_source(m, key[1], matrices)
        _TRANSFORMS[key] = tuple(load_kernel(src, f) for f in ("input_transform", "filter_transform",
                                                                "output_transform"))
    return _TRANSFORMS[key]


def images_per_chunk(C: int, O: int, th: int, tw: int, m: int, itemsize: int) -> int:
    """Images whose transformed tiles fill about :data:`TILE_BLOCK_BYTES`, or hold :data:`MIN_TILES` tiles."""
    per_image = (m + 2) ** 2 * th * tw * max(C, O) * itemsize
    return max(1, TILE_BLOCK_BYTES // max(per_image, 1), -(-MIN_TILES // (th * tw)))


def workspace_bytes(N: int, C: int, O: int, OH: int, OW: int, m: int, itemsize: int) -> int:
    """Bytes of the scratch arrays :func:`winograd_conv` uses (U, the padded plane, R, V, M, T)."""
    a = m + 2
    th, tw = -(-OH // m), -(-OW // m)
    P = min(images_per_chunk(C, O, th, tw, m, itemsize), N) * th * tw
    return (a * a * O * C + (th * m + 2) * (tw * m + 2) + a * (tw * m + 2) + a * a * C * P + a * a * O * P
            + m * a * tw) * itemsize


def winograd_conv(x, w, bias, padding, m: int, matrices, OH: int, OW: int):
    """F(m×m, 3×3) of NCHW ``x`` (float32 or float64, C-contiguous) with (O, C, 3, 3) ``w``, stride 1: returns
    (out, workspace arrays) — the NCHW result (bias added) and the scratch arrays it used, for the counter."""
    ct = x.dtype
    fin, ffil, fout = transforms(m, ct, matrices)
    a = m + 2
    N, C, H, W = x.shape
    O = w.shape[0]
    th, tw = -(-OH // m), -(-OW // m)
    ph, pw = padding
    step = min(images_per_chunk(C, O, th, tw, m, ct.itemsize), N)
    P = step * th * tw
    U = planes("winograd.U", a * a, O, C, ct)
    ffil(np.ascontiguousarray(w, ct), U)
    plane = scratch("winograd.plane", (th * m + 2, tw * m + 2), ct)   # ≥ (H + 2·ph, W + 2·pw): tiles lie inside
    plane[...] = 0.0                                     # its border stays zero: the padding (and ragged edge)
    R = scratch("winograd.R", (a, tw * m + 2), ct)
    V = planes("winograd.V", a * a, C, P, ct)
    M = planes("winograd.M", a * a, O, P, ct)
    T = scratch("winograd.T", (m * a, tw), ct)
    b = np.zeros(O, ct) if bias is None else np.ascontiguousarray(bias, ct)
    out = np.empty((N, O, OH, OW), ct)
    for n0 in range(0, N, step):
        n1 = min(n0 + step, N)                           # the last chunk may hold fewer images
        k = (n1 - n0) * th * tw
        v, mk = V[:, :, :k], M[:, :, :k]
        fin(x, v, plane, R, th, tw, ph, pw, n0, n1)
        np.matmul(U, v, out=mk)                          # the (m+2)² GEMMs: every general multiplication
        fout(mk, b, out, T, th, tw, n0, n1)
    return out, (U, plane, R, V, M, T)
