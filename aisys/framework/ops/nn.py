"""Neural-network ops: convolution, pooling, softmax, normalization, embedding, dropout, losses.

Convolution's backward is itself two ops (grad-input, grad-weight), and each of the three has a VJP
written with the other two, so second derivatives of a CNN come for free. The numpy references lower
convolution to im2col + matrix multiplies, the way most CPU libraries do.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..dtypes import bool_, int64, default_float
from ..errors import ShapeError
from ..registry import Cost, FusionKind as K, QuantizedForm, Spec, addressing, defop, matrix, not_lowerable, vector
from ..tensor import Tensor, apply, as_tensor
from ..shapes import conv_output_size
from ._common import need_float, norm_dims, prod, reduced_shape


def _pair(op, name, v, minimum):
    t = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != 2 or any(not isinstance(a, (int, np.integer)) for a in t):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    if any(a < minimum for a in t):
        fix = "to crop, slice the input instead" if name == "padding" else f"e.g. {name}={minimum}"
        raise ValueError(f"{op}: {name}={v!r} is invalid; each value must be ≥ {minimum} ({fix})")
    return (builtins.int(t[0]), builtins.int(t[1]))


_MINIMA = {"kernel_size": 1, "stride": 1, "padding": 0, "dilation": 1}


def _check_pairs(op, **attrs):
    """Shape inference sees the registry op's raw attrs (apply, graph nodes): refuse bad values here, with the
    fix, rather than letting numpy fail later. Attrs must already be (h, w) pairs of ints."""
    for name, v in attrs.items():
        if name not in _MINIMA:
            continue
        t = _pair(op, name, v, _MINIMA[name])
        if not isinstance(v, (tuple, list)):
            raise TypeError(f"{op}: the registry op takes {name} as a pair (h, w) of ints, got {v!r}; pass "
                            f"{name}={t} (the functional API, F.{op}, accepts a single int and makes the pair)")
    if "groups" in attrs and (not isinstance(attrs["groups"], (int, np.integer)) or attrs["groups"] < 1):
        raise ValueError(f"{op}: groups={attrs['groups']!r} must be a positive int (groups=1 is a plain convolution)")


# ---- im2col helpers -----------------------------------------------------------------------
def _pad_nchw(x, padding, value=0.0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _geom(xshape, wshape, stride, padding, dilation):
    N, C, H, W = xshape
    O, Cg, KH, KW = wshape
    OH = conv_output_size(H, KH, stride[0], padding[0], dilation[0], op="conv2d", dim="H")
    OW = conv_output_size(W, KW, stride[1], padding[1], dilation[1], op="conv2d", dim="W")
    return N, C, H, W, O, Cg, KH, KW, OH, OW


def _conv_attrs(stride, padding, dilation, groups):
    return dict(stride=_pair("conv2d", "stride", stride, 1), padding=_pair("conv2d", "padding", padding, 0),
                dilation=_pair("conv2d", "dilation", dilation, 1), groups=builtins.int(groups))


def _conv_infer(x, w, *b, stride, padding, dilation, groups):
    _check_pairs("conv2d", stride=stride, padding=padding, dilation=dilation, groups=groups)
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise ShapeError("conv2d", f"expects input (N, C, H, W) and weight (O, C/groups, KH, KW), got "
                         f"{tuple(x.shape)} and {tuple(w.shape)}", shapes=(x.shape, w.shape),
                         rule="aisys convolutions are NCHW, 4-D")
    need_float("conv2d", x, w)
    N, C, H, W = x.shape
    O, Cg = w.shape[0], w.shape[1]
    if groups < 1 or C % groups or O % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both in_channels={C} and out_channels={O}")
    if Cg * groups != C:
        raise ShapeError("conv2d", f"weight {tuple(w.shape)} expects {Cg * groups} input channels "
                         f"(w.shape[1]·groups = {Cg}·{groups}) but the input {tuple(x.shape)} has {C}",
                         shapes=(x.shape, w.shape), rule="weight.shape[1] × groups == input channels")
    if b and tuple(b[0].shape) != (O,):
        raise ShapeError("conv2d", f"bias shape {tuple(b[0].shape)} must be ({O},)", shapes=(b[0].shape,))
    g = _geom(tuple(x.shape), tuple(w.shape), stride, padding, dilation)
    return Spec((N, O, g[8], g[9]), x.dtype)


def _taps(KH, KW, stride, dilation, OH, OW):
    """For each kernel tap (kh, kw): the strided slices of the padded input it reads for all outputs."""
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dilation[0], kw * dilation[1]
            yield kh, kw, (slice(h0, h0 + stride[0] * (OH - 1) + 1, stride[0]),
                           slice(w0, w0 + stride[1] * (OW - 1) + 1, stride[1]))


def _padded(x, padding, value=0.0):
    """x with `padding` rows/columns of `value` around H and W. Same result as _pad_nchw, but np.pad spends
    ~20 µs of Python bookkeeping per call (more than the copy itself at LeNet sizes): fill and copy directly."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    shape = (N, C, H + 2 * ph, W + 2 * pw)
    xp = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def _axis_slice(k, stride, dilation, n_out):
    """The positions tap k reads along one axis, for every output position: k·dil, k·dil + stride, ..."""
    start = k * dilation
    return slice(start, start + stride * (n_out - 1) + 1, stride)


def _im2col(xp, KH, KW, stride, dilation, OH, OW):
    """Columns (N, C·KH·KW, OH·OW) of the padded input: row (c, kh, kw) of image n holds what tap (kh, kw) of
    channel c sees at every output position of that image.

    Why this layout: the convolution is then one *batched* matmul w (O, C·KH·KW) @ cols[n] whose result is
    already NCHW (no transpose copy), and each per-image GEMM is well shaped for BLAS (one (O, K) @
    (K, N·OH·OW) GEMM with the batch folded into the columns ran at half the speed).
    Why two stages (stride 1 along H): copying each of the KH·KW (OH, OW) tap windows straight out of the
    image moves only OW values per inner loop. Instead, copy the KW column-shifted images once
    (stage[n, c, kw, h, :] = row h as tap column kw reads it); tap (kh, kw) is then rows kh·dil .. kh·dil+OH-1
    of stage[n, c, kw], ONE contiguous block of OH·OW values. That halves the copy time at LeNet's sizes.
    With a vertical stride those rows are no longer contiguous and the stage would only add a copy, so
    each tap is copied directly."""
    N, C = xp.shape[:2]
    (sh, sw), (dh, dw) = stride, dilation
    cols = np.empty((N, C, KH, KW, OH, OW), xp.dtype)
    if sh != 1:
        for kh in range(KH):
            for kw in range(KW):
                cols[:, :, kh, kw] = xp[:, :, _axis_slice(kh, sh, dh, OH), _axis_slice(kw, sw, dw, OW)]
        return cols.reshape(N, C * KH * KW, OH * OW)
    rows = dh * (KH - 1) + OH                                 # padded rows any tap reads
    stage = np.empty((N, C, KW, rows, OW), xp.dtype)
    for kw in range(KW):
        stage[:, :, kw] = xp[:, :, :rows, _axis_slice(kw, sw, dw, OW)]
    for kh in range(KH):
        cols[:, :, kh] = stage[:, :, :, kh * dh:kh * dh + OH]
    return cols.reshape(N, C * KH * KW, OH * OW)


def _lowp_accumulator(*dtypes):
    """The dtype to sum long products in. numpy's float16 (and ml_dtypes' bfloat16) matmul accumulates in
    float32 and rounds once; a sum of per-image products must do the same to keep that accuracy."""
    dt = np.result_type(*dtypes)
    return np.dtype(np.float32) if dt.itemsize < 4 and not np.issubdtype(dt, np.integer) else dt


def _conv_ref(x, w, b=None, *, stride, padding, dilation, groups):
    """out[n, group] = w[group] (O/groups, K) @ cols[n, group] (K, OH·OW), K = C/groups·KH·KW: ONE matmul
    call batched over images and groups, written straight into the NCHW result."""
    N, C, H, W, O, Cg, KH, KW, OH, OW = _geom(x.shape, w.shape, stride, padding, dilation)
    G, Og, K, P = groups, O // groups, Cg * KH * KW, OH * OW
    cols = _im2col(_padded(x, padding), KH, KW, stride, dilation, OH, OW)
    out = np.empty((N, O, P), np.result_type(x.dtype, w.dtype))
    np.matmul(w.reshape(G, Og, K), cols.reshape(N, G, K, P), out=out.reshape(N, G, Og, P))
    if b is not None:
        out += b.reshape(1, O, 1)
    return out.reshape(N, O, OH, OW)


def _conv_bwd_input_ref(g, w, *, input_shape, stride, padding, dilation, groups):
    """The adjoint of im2col + matmul: every g value, times each weight tap, goes back onto the padded-input
    position that tap read (positions read by several taps add up). g is already (N, O, OH·OW), so the
    matmuls take it as is, batched over images and groups."""
    N, C, H, W, O, Cg, KH, KW, OH, OW = _geom(input_shape, w.shape, stride, padding, dilation)
    ph, pw = padding
    padded_shape = (N, C, H + 2 * ph, W + 2 * pw)
    g4 = g.reshape(N, groups, O // groups, OH * OW)
    w4 = w.reshape(groups, O // groups, Cg, KH, KW)
    if stride[0] == 1:
        z = _col2im_by_rows(g4, w4, padded_shape, dilation, stride[1], OH, OW)
    else:
        z = _col2im_by_taps(g4, w4, padded_shape, stride, dilation, OH, OW)
    return z[:, :, ph:ph + H, pw:pw + W]


def _col2im_by_taps(g4, w4, padded_shape, stride, dilation, OH, OW):
    """dcols = wᵀ @ g (one matmul), then each tap's (OH, OW) block added onto the padded input. Used with a
    vertical stride, where the rows a tap reaches are not contiguous anyway."""
    N, C = padded_shape[:2]
    G, Og, Cg, KH, KW = w4.shape
    dcols = np.empty((N, C, KH, KW, OH, OW), g4.dtype)
    np.matmul(w4.reshape(G, Og, Cg * KH * KW).transpose(0, 2, 1), g4,
              out=dcols.reshape(N, G, Cg * KH * KW, OH * OW))
    z = np.zeros(padded_shape, g4.dtype)
    for kh in range(KH):
        for kw in range(KW):                                  # overlapping taps add up
            z[:, :, _axis_slice(kh, stride[0], dilation[0], OH), _axis_slice(kw, stride[1], dilation[1], OW)] \
                += dcols[:, :, kh, kw]
    return z


def _col2im_by_rows(g4, w4, padded_shape, dilation, sw, OH, OW):
    """The vertical-stride-1 input gradient, in the two stages of _im2col run backwards.

    Why not dcols + one add per tap: those are KH·KW adds of strided (OH, OW) blocks, and numpy runs an
    add whose operands are not contiguous through its buffered loop, several times slower than the same
    add on contiguous data (strided *copies* stay fast). Instead:
    1. per kernel row kh, one matmul w[:, :, kh, :]ᵀ (C·KW, O) @ g[n] (O, OH·OW) writes into a buffer laid
       out like im2col's stage, [n, (c, kw), h·OW + ow], whose tail past OH·OW stays zero; shifted by
       kh·dil rows, it is then ONE contiguous 1-D add into the stage (the zero tails land on neighbours);
    2. per kernel column kw, a copy of its stage plane into its own zeroed padded-size canvas, then a
       contiguous sum of the KW canvases onto +0 (the running sum the taps add onto)."""
    N, C = padded_shape[:2]
    G, Og, Cg, KH, KW = w4.shape
    dh, dw = dilation
    P, rows = OH * OW, dh * (KH - 1) + OH                    # rows: padded rows any tap reaches
    stage = np.zeros((N, C * KW, rows * OW), g4.dtype)
    buf = np.zeros_like(stage) if KH > 1 else stage
    flat_stage, flat_buf = stage.reshape(-1), buf.reshape(-1)
    for kh in range(KH):
        w_kh = w4[:, :, :, kh, :].reshape(G, Og, Cg * KW).transpose(0, 2, 1)
        dst = stage if kh == 0 else buf                       # tap row 0 lands on rows 0..OH-1 exactly
        np.matmul(w_kh, g4, out=dst.reshape(N, G, Cg * KW, rows * OW)[..., :P])
        if kh:
            off = kh * dh * OW
            flat_stage[off:] += flat_buf[:flat_stage.size - off]
    stage = stage.reshape(N, C, KW, rows, OW)
    canvases = np.zeros((KW,) + padded_shape, g4.dtype)
    for kw in range(KW):
        canvases[kw][:, :, :rows, _axis_slice(kw, sw, dw, OW)] = stage[:, :, kw]
    z = np.zeros(padded_shape, g4.dtype)
    for canvas in canvases:
        z += canvas
    return z


def _conv_bwd_weight_ref(g, x, *, weight_shape, stride, padding, dilation, groups):
    """dw[group] = Σₙ cols[n, group] (K, OH·OW) @ g[n, group]ᵀ: ONE matmul call batched over images and
    groups, then a sum over the batch.

    Why not one GEMM g (O, N·OH·OW) @ colsᵀ: with its long inner dimension (25 088 for LeNet's conv1) and
    tiny outputs, BLAS ran it at ~14 GFLOP/s; the per-image products, with the many rows (K) first, run at
    ~70-80 GFLOP/s, and summing the small (N, groups, K, O/groups) result is cheap."""
    N, C, H, W, O, Cg, KH, KW, OH, OW = _geom(x.shape, weight_shape, stride, padding, dilation)
    G, Og, K, P = groups, O // groups, Cg * KH * KW, OH * OW
    acc = _lowp_accumulator(g.dtype, x.dtype)
    cols = _im2col(_padded(x, padding), KH, KW, stride, dilation, OH, OW).astype(acc, copy=False)
    g4 = g.reshape(N, G, Og, P).astype(acc, copy=False)
    per_image = np.matmul(cols.reshape(N, G, K, P), g4.transpose(0, 1, 3, 2))      # (N, G, K, Og)
    dw = np.empty(weight_shape, g.dtype)
    dw.reshape(G, Og, K)[...] = per_image.sum(0).transpose(0, 2, 1)
    return dw


def _conv_cost(in_specs, out_spec, **a):
    x, w = in_specs[0], in_specs[1]
    macs = prod(out_spec.shape) * w.shape[1] * w.shape[2] * w.shape[3]
    return Cost(flops=2 * macs + (out_spec.numel if len(in_specs) > 2 else 0),
                bytes=builtins.sum(s.nbytes for s in in_specs) + out_spec.nbytes)


_BACKWARD = not_lowerable("a training (backward) op: the chip model lowers inference graphs; lower the forward graph "
                          "(aisys.trace of the model, not of a training step)")


def _conv_np(g, out, x, w, *b, **a):
    """``_conv_vjp`` on arrays: the two backward ops as eager runs them (their registered kernels, see
    aisys.kernels.conv, else their references), and the bias gradient."""
    gx = _BWD_INPUT.eager(g, w._data, input_shape=x._data.shape, **a) if x.requires_grad else None
    gw = _BWD_WEIGHT.eager(g, x._data, weight_shape=w._data.shape, **a) if w.requires_grad else None
    if not b:
        return gx, gw
    return gx, gw, (np.sum(g, axis=(0, 2, 3), dtype=g.dtype) if b[0].requires_grad else None)


def _conv_vjp(g, out, x, w, *b, **a):
    gx = apply("conv2d_backward_input", g, w, input_shape=tuple(x.shape), **a) if x.requires_grad else None
    gw = apply("conv2d_backward_weight", g, x, weight_shape=tuple(w.shape), **a) if w.requires_grad else None
    return (gx, gw) + ((g.sum((0, 2, 3)) if b[0].requires_grad else None,) if b else ())


def _conv_jvp(t, out, x, w, *b, **a):
    terms = []
    if t[0] is not None:
        terms.append(apply("conv2d", t[0], w, **a))
    if t[1] is not None:
        terms.append(apply("conv2d", x, t[1], **a))
    if b and t[2] is not None:
        terms.append(t[2].reshape(1, -1, 1, 1).broadcast_to(out.shape))
    acc = terms[0]
    for s in terms[1:]:
        acc = acc + s
    return acc


_CONV = defop("conv2d", infer=_conv_infer, ref=_conv_ref, fusion=K.COMPLEX_OUT_FUSABLE, cost=_conv_cost,
      vjp=_conv_vjp, jvp=_conv_jvp, vjp_np=_conv_np, chip=matrix("conv", layout="NCHW"),
      torch_name="torch.nn.functional.conv2d", quantized=QuantizedForm("integer", "conv2d_integer"),
      saved=((0, 1), (1, 0)),
      doc="NCHW convolution (cross-correlation, as every framework), with stride, padding, dilation, groups.")


def _bwd_in_infer(g, w, *, input_shape, **a):
    _check_pairs("conv2d_backward_input", **a)
    return Spec(tuple(input_shape), g.dtype)


def _bwd_w_infer(g, x, *, weight_shape, **a):
    _check_pairs("conv2d_backward_weight", **a)
    return Spec(tuple(weight_shape), g.dtype)


_BWD_INPUT = defop("conv2d_backward_input", infer=_bwd_in_infer, ref=_conv_bwd_input_ref, fusion=K.OPAQUE, chip=_BACKWARD,
      cost=lambda ins, out, **a: _conv_cost([out, ins[1]], ins[0]),
      vjp=lambda h, out, g, w, *, input_shape, **a: (
          apply("conv2d", h, w, **a),
          apply("conv2d_backward_weight", g, h, weight_shape=tuple(w.shape), **a)),
      jvp=lambda t, out, g, w, *, input_shape, **a: _sum_terms(
          apply("conv2d_backward_input", t[0], w, input_shape=input_shape, **a) if t[0] is not None else None,
          apply("conv2d_backward_input", g, t[1], input_shape=input_shape, **a) if t[1] is not None else None),
      doc="Gradient of conv2d with respect to its input (a transposed convolution).")

_BWD_WEIGHT = defop("conv2d_backward_weight", infer=_bwd_w_infer, ref=_conv_bwd_weight_ref, fusion=K.OPAQUE, chip=_BACKWARD,
      cost=lambda ins, out, **a: _conv_cost([ins[1], out], ins[0]),
      vjp=lambda h, out, g, x, *, weight_shape, **a: (
          apply("conv2d", x, h, **a),
          apply("conv2d_backward_input", g, h, input_shape=tuple(x.shape), **a)),
      jvp=lambda t, out, g, x, *, weight_shape, **a: _sum_terms(
          apply("conv2d_backward_weight", t[0], x, weight_shape=weight_shape, **a) if t[0] is not None else None,
          apply("conv2d_backward_weight", g, t[1], weight_shape=weight_shape, **a) if t[1] is not None else None),
      doc="Gradient of conv2d with respect to its weight.")


def _kernels_on_first_use(op) -> None:
    """The CPU conv kernels (aisys.kernels.conv) register themselves with the dispatcher when their module loads;
    load it on the op's first eager call or dispatcher lookup (aisys.framework.dispatch), not at ``import aisys``."""
    def load():
        from ...kernels import conv  # noqa: F401  (registers the kernels: op.eager now dispatches to them)
        if op.eager is first_call:                 # loaded before, and its kernels since unregistered
            op.eager = op.ref

    def first_call(*arrays, **attrs):
        load()
        return op.eager(*arrays, **attrs)

    first_call.loads_kernels = load
    op.eager = first_call


for _op in (_CONV, _BWD_INPUT, _BWD_WEIGHT):
    _kernels_on_first_use(_op)


def _sum_terms(*terms):
    terms = [t for t in terms if t is not None]
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    return acc


# ---- pooling ------------------------------------------------------------------------------------
def _pool_attrs(op, kernel_size, stride, padding, dilation=1):
    k = _pair(op, "kernel_size", kernel_size, 1)
    s = _pair(op, "stride", stride if stride is not None else k, 1)
    p = _pair(op, "padding", padding, 0)
    d = _pair(op, "dilation", dilation, 1)
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
    return dict(kernel_size=k, stride=s, padding=p, dilation=d)


def _pool_geom(op, shape, kernel_size, stride, padding, dilation):
    if len(shape) != 4:
        raise ShapeError(op, f"expects a 4-D input (N, C, H, W), got {tuple(shape)}", shapes=(shape,))
    N, C, H, W = shape
    OH = conv_output_size(H, kernel_size[0], stride[0], padding[0], dilation[0], op=op, dim="H")
    OW = conv_output_size(W, kernel_size[1], stride[1], padding[1], dilation[1], op=op, dim="W")
    return N, C, H, W, OH, OW


def _pool_infer(op, integers: bool = False):
    def infer(x, **a):
        _check_pairs(op, **a)
        if not integers or x.dtype is bool_:
            need_float(op, x)
        N, C, H, W, OH, OW = _pool_geom(op, tuple(x.shape), **a)
        return Spec((N, C, OH, OW), x.dtype)
    return infer


def _max_of(slices):
    """Elementwise maximum of a list of same-shape views, into a fresh array (np.maximum propagates NaN)."""
    out = np.maximum(slices[0], slices[1]) if len(slices) > 1 else slices[0].copy()
    for s in slices[2:]:
        np.maximum(out, s, out=out)
    return out


def _maxpool_ref(x, **a):
    """Separable max: first over the KH window rows (whole padded rows, a contiguous inner loop), then over
    the KW columns of that: KH + KW passes instead of KH·KW strided per-tap ones. The maximum does not
    depend on the order it is taken in (NaN wins either way; only the sign of a zero among equal zeros may
    come out differently)."""
    N, C, H, W, OH, OW = _pool_geom("max_pool2d", x.shape, **a)
    (KH, KW), (sh, sw), (dh, dw) = a["kernel_size"], a["stride"], a["dilation"]
    low = -np.inf if x.dtype.kind == "f" or x.dtype.kind == "V" else np.iinfo(x.dtype).min   # int8 codes: pad with
    xp = _padded(x, a["padding"], value=low)                                              # the lowest code
    rows = _max_of([xp[:, :, _axis_slice(kh, sh, dh, OH)] for kh in range(KH)])
    return _max_of([rows[..., _axis_slice(kw, sw, dw, OW)] for kw in range(KW)])


def _first_max_taps(x, kernel_size, stride, padding, dilation):
    """Per-tap slices of the padded input (row-major window order) and a bool (KH·KW, N, C, OH, OW) array,
    True where that tap holds its window's *first* maximum (a NaN counts as the maximum, as numpy's argmax).

    Why gather first: each tap's values are copied once (a strided copy, which numpy does fast) into a
    contiguous (KH·KW, N, C, OH, OW) block, so the maximum, the comparisons and the first-wins bookkeeping
    all run on contiguous arrays, instead of several strided arithmetic passes per tap (numpy runs those
    through its slower buffered loop)."""
    N, C, H, W, OH, OW = _pool_geom("max_pool2d", x.shape, kernel_size, stride, padding, dilation)
    xp = _padded(x, padding, value=-np.inf)
    taps = [slices for _, _, slices in _taps(*kernel_size, stride, dilation, OH, OW)]
    vals = np.empty((len(taps), N, C, OH, OW), x.dtype)
    for t, (hs, ws) in enumerate(taps):
        vals[t] = xp[:, :, hs, ws]
    top = _max_of(list(vals))
    equal = vals == top
    first = np.empty_like(equal)
    first[0] = equal[0]
    taken = equal[0].copy()
    for t in range(1, len(taps)):
        np.greater(equal[t], taken, out=first[t])             # equal here and not taken before
        taken |= equal[t]
    if not taken.all():                          # windows holding a NaN: the first NaN is their maximum
        for t in range(len(taps)):
            nan = np.isnan(vals[t])
            nan &= ~taken
            first[t] |= nan
            taken |= nan
    return taps, first


def _windows_disjoint(kernel_size, stride, dilation, out_size):
    """True when no input element lies in two windows: per axis, a stride at least the window's span
    (or a single window)."""
    return all(o == 1 or s >= d * (k - 1) + 1 for k, s, d, o in zip(kernel_size, stride, dilation, out_size))


def _bits(dtype):
    """The unsigned integer type as wide as `dtype`: selecting through bit patterns keeps every value exact."""
    return np.dtype(f"u{np.dtype(dtype).itemsize}")


def _select_into(dst, first, g):
    """dst[...] = where(first, g, +0) exactly (NaN payloads and signs kept), as ONE integer multiply of g's bit
    pattern by the 0/1 mask (np.where branches per element and is several times slower); dst may be a
    strided view."""
    u = _bits(g.dtype)
    np.multiply(g.view(u), first, out=dst.view(u), dtype=u)


def _maxpool_backward_ref(g, x, **a):
    """Route each pooled gradient to its window's first maximum.

    Fast path: when windows are disjoint (LeNet's 2×2, stride 2) each input element receives at most one
    value, so each tap's selection is *written* straight into its strided slice of the result: no
    zero-filled accumulator and no read-modify-write adds (when the windows also tile the padded input
    exactly, the result is not even zero-filled first). A gradient of -0.0 therefore stays -0.0 there,
    where adding it to a +0.0 accumulator gave +0.0: equal values. Overlapping windows add up, in row-major
    tap order."""
    (ph, pw), (N, C, H, W) = a["padding"], x.shape
    taps, first = _first_max_taps(x, **a)
    (KH, KW), stride, dilation = a["kernel_size"], tuple(a["stride"]), tuple(a["dilation"])
    OH, OW = first.shape[3:]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    if _windows_disjoint((KH, KW), stride, dilation, (OH, OW)):
        tiled = dilation == (1, 1) and stride == (KH, KW) and (OH * KH, OW * KW) == (Hp, Wp)
        z = (np.empty if tiled else np.zeros)((N, C, Hp, Wp), g.dtype)
        for (hs, ws), f in zip(taps, first):
            _select_into(z[:, :, hs, ws], f, g)
    else:
        z = np.zeros((N, C, Hp, Wp), g.dtype)
        sel = np.empty(g.shape, g.dtype)
        for (hs, ws), f in zip(taps, first):
            _select_into(sel, f, g)
            z[:, :, hs, ws] += sel                            # overlapping windows add up
    return z[:, :, ph:ph + H, pw:pw + W]


def _maxpool_select_ref(h, x, **a):
    """h read at each window's first maximum. Every window has exactly one, so OR-ing the taps' selected bit
    patterns gives h's value there bit for bit (as copying it would), with contiguous integer ops."""
    hp = _padded(h, a["padding"])
    taps, first = _first_max_taps(x, **a)
    u = _bits(h.dtype)
    out = np.zeros(first.shape[1:], u)
    part = np.empty_like(out)
    for (hs, ws), f in zip(taps, first):
        np.multiply(hp[:, :, hs, ws].view(u), f, out=part, dtype=u)
        out |= part
    return out.view(h.dtype)


def _window_cost(in_specs, out_spec, kernel_size, **a):
    return Cost(flops=out_spec.numel * kernel_size[0] * kernel_size[1],
                bytes=in_specs[0].nbytes + out_spec.nbytes)


defop("max_pool2d", infer=_pool_infer("max_pool2d", integers=True), ref=_maxpool_ref, fusion=K.OPAQUE,
      cost=_window_cost, chip=vector("maxpool"), vjp=lambda g, out, x, **a: (apply("max_pool2d_backward", g, x, **a),),
      vjp_np=lambda g, out, x, **a: (_maxpool_backward_ref(g, x._data, **a),),
      jvp=lambda t, out, x, **a: apply("max_pool2d_select", t[0], x, **a),
      torch_name="torch.nn.functional.max_pool2d", doc="Ties: the first maximum in the window gets the gradient.",
      saved=(0,), quantized=QuantizedForm("same"))

defop("max_pool2d_backward", infer=lambda g, x, **a: Spec(tuple(x.shape), g.dtype), ref=_maxpool_backward_ref,
      fusion=K.OPAQUE, cost=lambda ins, out, **a: Cost(flops=ins[0].numel, bytes=builtins.sum(s.nbytes for s in ins) + out.nbytes),
      chip=_BACKWARD, vjp=lambda h, out, g, x, **a: (apply("max_pool2d_select", h, x, **a), None),
      jvp=lambda t, out, g, x, **a: apply("max_pool2d_backward", t[0], x, **a) if t[0] is not None else None,
      doc="Route each pooled gradient to its window's argmax.")

def _maxpool_select_infer(h, x, **a):
    if tuple(h.shape) != tuple(x.shape):
        raise ShapeError("max_pool2d_select", f"h {tuple(h.shape)} must have the pooled input's shape {tuple(x.shape)}",
                         shapes=(h.shape, x.shape), rule="select reads h at the argmax positions of x's windows")
    spec = _pool_infer("max_pool2d_select")(x, **a)
    return Spec(spec.shape, h.dtype)


defop("max_pool2d_select", infer=_maxpool_select_infer, ref=_maxpool_select_ref, fusion=K.OPAQUE, chip=_BACKWARD,
      cost=_window_cost,
      vjp=lambda g, out, h, x, **a: (apply("max_pool2d_backward", g, x, **a), None),
      jvp=lambda t, out, h, x, **a: apply("max_pool2d_select", t[0], x, **a) if t[0] is not None else None,
      doc="Read h at the argmax positions of x's windows (the adjoint of max_pool2d_backward).")


def _avgpool_ref(x, **a):
    N, C, H, W, OH, OW = _pool_geom("avg_pool2d", x.shape, **a)
    KH, KW = a["kernel_size"]
    xp = _pad_nchw(x, a["padding"])
    acc = np.zeros((N, C, OH, OW), np.float64 if x.dtype == np.float64 else np.float32)
    for kh, kw, (hs, ws) in _taps(KH, KW, a["stride"], a["dilation"], OH, OW):
        acc += xp[:, :, hs, ws]
    return (acc / (KH * KW)).astype(x.dtype)


def _avgpool_backward_ref(g, *, input_shape, kernel_size, stride, padding, dilation):
    N, C, H, W = input_shape
    OH, OW = g.shape[2:]
    ph, pw = padding
    KH, KW = kernel_size
    z = np.zeros((N, C, H + 2 * ph, W + 2 * pw), g.dtype)
    share = g / (KH * KW)
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dilation[0], kw * dilation[1]
            z[:, :, h0:h0 + stride[0] * OH:stride[0], w0:w0 + stride[1] * OW:stride[1]] += share
    return z[:, :, ph:ph + H, pw:pw + W]


defop("avg_pool2d", infer=_pool_infer("avg_pool2d"), ref=_avgpool_ref, fusion=K.OPAQUE, cost=_window_cost,
      chip=vector("avgpool"), vjp=lambda g, out, x, **a: (apply("avg_pool2d_backward", g, input_shape=tuple(x.shape), **a),),
      vjp_np=lambda g, out, x, **a: (_avgpool_backward_ref(g, input_shape=x._data.shape, **a),),
      jvp=lambda t, out, x, **a: apply("avg_pool2d", t[0], **a),
      torch_name="torch.nn.functional.avg_pool2d", doc="Padding counts as zeros (count_include_pad=True).", saved=())

defop("avg_pool2d_backward", infer=lambda g, *, input_shape, **a: Spec(tuple(input_shape), g.dtype),
      ref=_avgpool_backward_ref, fusion=K.OPAQUE, chip=_BACKWARD,
      cost=lambda ins, out, **a: Cost(flops=out.numel, bytes=ins[0].nbytes + out.nbytes),
      vjp=lambda h, out, g, *, input_shape, **a: (apply("avg_pool2d", h, **a),),
      jvp=lambda t, out, g, *, input_shape, **a: apply("avg_pool2d_backward", t[0], input_shape=input_shape, **a))


# ---- softmax family ------------------------------------------------------------------------------
def _softmax_infer(op):
    def infer(x, dim):
        need_float(op, x)
        norm_dims(op, dim, len(x.shape), x.shape)
        return Spec(tuple(x.shape), x.dtype)
    return infer


def _softmax_ref(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _log_softmax_ref(x, dim):
    s = x - x.max(axis=dim, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=dim, keepdims=True))


def _softmax_cost(in_specs, out_spec, dim):
    return Cost(flops=5 * out_spec.numel, bytes=in_specs[0].nbytes + out_spec.nbytes)


def _softmax_np(g, out, x, dim):
    o = out._data
    return (o * (g - np.sum(g * o, axis=(dim % o.ndim,), keepdims=True, dtype=o.dtype)),)


def _log_softmax_np(g, out, x, dim):
    return (g - np.exp(out._data) * np.sum(g, axis=(dim % g.ndim,), keepdims=True, dtype=g.dtype),)


defop("softmax", infer=_softmax_infer("softmax"), ref=_softmax_ref, fusion=K.OPAQUE, cost=_softmax_cost,
      chip=vector("softmax"), vjp=lambda g, out, x, dim: (out * (g - (g * out).sum(dim, keepdim=True)),),
      vjp_np=_softmax_np,
      jvp=lambda t, out, x, dim: out * (t[0] - (t[0] * out).sum(dim, keepdim=True)),
      doc="Numerically stable: subtracts the row max first.", torch_name="torch.softmax", saved=("out",))

defop("log_softmax", infer=_softmax_infer("log_softmax"), ref=_log_softmax_ref, fusion=K.OPAQUE, cost=_softmax_cost,
      chip=vector("softmax"), vjp=lambda g, out, x, dim: (g - out.exp() * g.sum(dim, keepdim=True),),
      vjp_np=_log_softmax_np,
      jvp=lambda t, out, x, dim: t[0] - (out.exp() * t[0]).sum(dim, keepdim=True), saved=("out",))


# ---- normalization --------------------------------------------------------------------------------
def _ln_dims(x, normalized_shape):
    k = len(normalized_shape)
    if tuple(x.shape[len(x.shape) - k:]) != tuple(normalized_shape):
        raise ShapeError("layer_norm", f"normalized_shape {tuple(normalized_shape)} must match the last "
                         f"{k} dims of the input {tuple(x.shape)}", shapes=(x.shape,))
    return tuple(range(len(x.shape) - k, len(x.shape)))


def _ln_infer(x, normalized_shape, eps):
    need_float("layer_norm", x)
    _ln_dims(x, normalized_shape)
    return Spec(tuple(x.shape), x.dtype)


def _ln_ref(x, normalized_shape, eps):
    d = _ln_dims(x, normalized_shape)
    mu = x.mean(axis=d, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=d, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def _ln_tangent(t, out, x, normalized_shape, eps):
    """J·t for layer norm; J is symmetric, so the same formula is the VJP."""
    d = _ln_dims(x, normalized_shape)
    rstd = 1.0 / (x.var(d, keepdim=True, correction=0) + eps).sqrt()
    return rstd * (t - t.mean(d, keepdim=True) - out * (t * out).mean(d, keepdim=True))


defop("layer_norm", infer=_ln_infer, ref=_ln_ref, fusion=K.OPAQUE, chip=vector("layernorm"),
      cost=lambda ins, out, **a: Cost(flops=8 * out.numel, bytes=ins[0].nbytes + out.nbytes),
      vjp=lambda g, out, x, **a: (_ln_tangent(g, out, x, **a),),
      jvp=lambda t, out, x, **a: _ln_tangent(t[0], out, x, **a),
      doc="Normalization only: (x − mean) / √(var + ε) over the last dims. The affine weight and bias are "
          "separate mul/add ops in F.layer_norm, so fusion can see them.", saved=(0, "out"))


def _bn_infer(x, mean, var, weight, bias, eps):
    need_float("batch_norm", x)
    if len(x.shape) < 2:
        raise ShapeError("batch_norm", f"expects (N, C, ...) input, got {tuple(x.shape)}", shapes=(x.shape,))
    C = x.shape[1]
    for nm, t in (("running_mean", mean), ("running_var", var), ("weight", weight), ("bias", bias)):
        if tuple(t.shape) != (C,):
            raise ShapeError("batch_norm", f"{nm} has shape {tuple(t.shape)} but the input has C={C} channels "
                             f"(input {tuple(x.shape)})", shapes=(x.shape, t.shape),
                             rule="per-channel statistics have shape (C,)")
    return Spec(tuple(x.shape), x.dtype)


def _bshape(x, c):
    return (1, c) + (1,) * (x.ndim - 2)


def _bn_ref(x, mean, var, weight, bias, eps):
    s = _bshape(x, x.shape[1])
    return ((x - mean.reshape(s)) / np.sqrt(var.reshape(s) + eps) * weight.reshape(s) + bias.reshape(s)).astype(x.dtype)


def _bn_vjp(g, out, x, mean, var, weight, bias, eps):
    s = _bshape(x, x.shape[1])
    red = (0,) + tuple(range(2, x.ndim))
    rstd = 1.0 / (var.reshape(s) + eps).sqrt()
    centered = x - mean.reshape(s)
    gw = g * weight.reshape(s)
    return (gw * rstd,
            -(gw * rstd).sum(red),
            (gw * centered * rstd * rstd * rstd * -0.5).sum(red),
            (g * centered * rstd).sum(red),
            g.sum(red))


def _bn_jvp(t, out, x, mean, var, weight, bias, eps):
    s = _bshape(x, x.shape[1])
    rstd = 1.0 / (var.reshape(s) + eps).sqrt()
    centered = x - mean.reshape(s)
    w = weight.reshape(s)
    terms = []
    if t[0] is not None:
        terms.append(t[0] * rstd * w)
    if t[1] is not None:
        terms.append(-t[1].reshape(s) * rstd * w)
    if t[2] is not None:
        terms.append(centered * w * -0.5 * rstd * rstd * rstd * t[2].reshape(s))
    if t[3] is not None:
        terms.append(centered * rstd * t[3].reshape(s))
    if t[4] is not None:
        terms.append(t[4].reshape(s))
    acc = terms[0].broadcast_to(out.shape) if tuple(terms[0].shape) != tuple(out.shape) else terms[0]
    for u in terms[1:]:
        acc = acc + u
    return acc


defop("batch_norm", infer=_bn_infer, ref=_bn_ref, fusion=K.BROADCAST, chip=vector("fma"),
      cost=lambda ins, out, **a: Cost(flops=4 * out.numel, bytes=builtins.sum(s.nbytes for s in ins) + out.nbytes),
      vjp=_bn_vjp, jvp=_bn_jvp,
      doc="y = (x − mean)/√(var + ε)·weight + bias per channel (dim 1). Training mode passes the batch's own "
          "mean and var (computed with ops), so gradients flow through them too.")


# ---- embedding, one_hot, dropout ------------------------------------------------------------------
def _int_check(op, idx):
    if idx.dtype.is_floating or idx.dtype.name == "bool":
        raise TypeError(f"{op}: indices must be an integer tensor, got {idx.dtype.name}; use .long()")


def _emb_infer(idx, weight):
    _int_check("embedding", idx)
    if len(weight.shape) != 2:
        raise ShapeError("embedding", f"weight must be 2-D (num_embeddings, dim), got {tuple(weight.shape)}")
    return Spec(tuple(idx.shape) + (weight.shape[1],), weight.dtype)


def _emb_ref(idx, weight):
    if idx.size and (idx.min() < 0 or idx.max() >= weight.shape[0]):
        raise IndexError(f"embedding: index {idx.max() if idx.max() >= weight.shape[0] else idx.min()} is out of "
                         f"range for {weight.shape[0]} embeddings (valid 0..{weight.shape[0] - 1})")
    return weight[idx]


def _emb_bwd_ref(g, idx, num_embeddings):
    z = np.zeros((num_embeddings, g.shape[-1]), g.dtype)
    np.add.at(z, idx.reshape(-1), g.reshape(-1, g.shape[-1]))
    return z


defop("embedding", infer=_emb_infer, ref=_emb_ref, fusion=K.INJECTIVE, cost=lambda ins, out: Cost(0, 2 * out.nbytes + ins[0].nbytes),
      chip=vector("copy"), takes_indices=True, vjp=lambda g, out, idx, weight: (None, apply("embedding_backward", g, idx, num_embeddings=weight.shape[0])),
      jvp=lambda t, out, idx, weight: apply("embedding", idx, t[1]), torch_name="torch.nn.functional.embedding",
      saved=(0,))

defop("embedding_backward", infer=lambda g, idx, num_embeddings: Spec((num_embeddings, g.shape[-1]), g.dtype),
      ref=_emb_bwd_ref, fusion=K.OPAQUE, cost=lambda ins, out, **a: Cost(ins[0].numel, ins[0].nbytes + out.nbytes),
      chip=_BACKWARD,
      vjp=lambda h, out, g, idx, num_embeddings: (apply("embedding", idx, h), None),
      jvp=lambda t, out, g, idx, num_embeddings: apply("embedding_backward", t[0], idx, num_embeddings=num_embeddings))

defop("one_hot", infer=lambda idx, num_classes: (_int_check("one_hot", idx), Spec(tuple(idx.shape) + (num_classes,), int64))[1],
      ref=lambda idx, num_classes: (idx[..., None] == np.arange(num_classes)).astype(np.int64),
      fusion=K.INJECTIVE, cost=lambda ins, out, **a: Cost(0, ins[0].nbytes + out.nbytes), chip=vector("copy"))


def _dropout_ref(x, p, seed):
    if p == 0.0:
        return x
    keep = np.random.default_rng(seed).random(x.shape) >= p
    return (x * keep / (1.0 - p)).astype(x.dtype)


defop("dropout", infer=lambda x, p, seed: Spec(tuple(x.shape), x.dtype), ref=_dropout_ref, fusion=K.ELEMENTWISE,
      cost=lambda ins, out, **a: Cost(2 * out.numel, ins[0].nbytes + out.nbytes), pure=False,
      chip=addressing("modelled as the identity: the chip runs inference, where dropout is off"),
      vjp=lambda g, out, x, p, seed: (apply("dropout", g, p=p, seed=seed),),
      jvp=lambda t, out, x, p, seed: apply("dropout", t[0], p=p, seed=seed),
      doc="The mask is drawn from `seed`, so the backward (the same dropout of g) sees the same mask. Marked "
          "impure: CSE never merges two dropouts.", saved=())


# ---- losses ---------------------------------------------------------------------------------------
def _ce_infer(x, target, reduction, ignore_index=None):
    need_float("cross_entropy", x)
    _int_check("cross_entropy", target)
    if len(x.shape) != 2 or tuple(target.shape) != (x.shape[0],):
        raise ShapeError("cross_entropy", f"expects logits (N, C) and integer targets (N,), got "
                         f"{tuple(x.shape)} and {tuple(target.shape)}", shapes=(x.shape, target.shape),
                         rule="one class index per row of logits")
    return Spec(() if reduction != "none" else (x.shape[0],), x.dtype)


def check_targets(op: str, target: np.ndarray, classes: int, ignore_index=None) -> None:
    """Refuse a class index outside 0..classes-1 (other than ``ignore_index``), naming the first bad value."""
    bad = (target < 0) | (target >= classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bad.any():
        i = int(np.argmax(bad.reshape(-1)))
        skip = f" (ignore_index={ignore_index} marks targets to skip)" if ignore_index is not None else \
            " (ignore_index marks targets to skip)"
        raise IndexError(f"{op}: target {int(target.reshape(-1)[i])} (at position {i}) is out of range for "
                         f"{classes} classes: class indices are 0..{classes - 1}{skip}")


def _ce_ref(x, target, reduction, ignore_index=None):
    check_targets("cross_entropy", target, x.shape[1], ignore_index)
    s = x - x.max(axis=1, keepdims=True)                 # log_softmax's steps, read at the targets only:
    lse = np.log(np.exp(s).sum(axis=1))                  # −(s − lse) is exactly lse − s in IEEE arithmetic
    if ignore_index is None:
        return _reduced(lse - s[np.arange(x.shape[0]), target], reduction)
    keep = target != ignore_index
    nll = np.where(keep, lse - s[np.arange(x.shape[0]), np.where(keep, target, 0)], 0).astype(x.dtype)
    if reduction == "mean":                              # as torch: the mean over the targets kept (nan if none)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.add.reduce(nll) / x.dtype.type(keep.sum()), x.dtype)
    return _reduced(nll, reduction)


def _reduced(v, reduction):
    """A loss's reduction. The mean of float32/float64 is np.mean's own arithmetic (one pairwise sum in the
    array's dtype, then a division by the count) without its Python-level dispatch."""
    if reduction == "mean":
        if v.dtype == np.float32 or v.dtype == np.float64:
            return np.add.reduce(v, axis=None) / v.size
        return v.mean()
    return v.sum() if reduction == "sum" else v


def _ce_dlogits(x, target, reduction, ignore_index=None):
    d = x.softmax(1) - apply("one_hot", target, num_classes=x.shape[1]).to(x.dtype)
    if ignore_index is None:
        return d / float(x.shape[0]) if reduction == "mean" else d
    keep = (target != ignore_index).to(x.dtype)          # rows of ignored targets get no gradient
    d = d * keep.reshape(-1, 1)
    return d / keep.sum() if reduction == "mean" else d


def _ce_vjp(g, out, x, target, reduction, ignore_index=None):
    gg = g.reshape(-1, 1) if reduction == "none" else g
    return (_ce_dlogits(x, target, reduction, ignore_index) * gg, None)


def _ce_np(g, out, x, target, reduction, ignore_index=None):
    """``_ce_vjp`` on arrays: (softmax − one_hot)/N, the one-hot row-major as the one_hot op makes it; rows
    whose target is ``ignore_index`` get no gradient and the mean is over the others."""
    xd, td = x._data, target._data
    one_hot = np.zeros(xd.shape, xd.dtype)
    if ignore_index is None:
        one_hot[np.arange(xd.shape[0]), td] = 1
    else:
        one_hot[...] = td[:, None] == np.arange(xd.shape[1])
    d = np.subtract(_softmax_ref(xd, 1), one_hot)
    if ignore_index is None:
        if reduction == "mean":
            d = np.divide(d, float(xd.shape[0]))
    else:
        keep = (td != ignore_index).astype(xd.dtype)
        d = d * keep.reshape(-1, 1)
        if reduction == "mean":
            d = d / np.add.reduce(keep)
    return (d * (g.reshape(-1, 1) if reduction == "none" else g), None)


def _ce_jvp(t, out, x, target, reduction, ignore_index=None):
    prod_ = (_ce_dlogits(x, target, reduction, ignore_index) * t[0])
    return prod_.sum(1) if reduction == "none" else prod_.sum()


defop("cross_entropy", infer=_ce_infer, ref=_ce_ref, fusion=K.OPAQUE,
      cost=lambda ins, out, **a: Cost(6 * ins[0].numel, ins[0].nbytes + ins[1].nbytes + out.nbytes),
      vjp=_ce_vjp, jvp=_ce_jvp, vjp_np=_ce_np, takes_indices=True, chip=vector("softmax"),
      torch_name="torch.nn.functional.cross_entropy",
      doc="log_softmax + negative log-likelihood in one op; gradient (softmax − one_hot)/N. With ignore_index, "
          "rows whose target equals it count for nothing and the mean is over the others (as torch).",
      saved=(0, 1))


def _mse_infer(x, y, reduction):
    need_float("mse_loss", x, y)
    if tuple(x.shape) != tuple(y.shape):
        raise ShapeError("mse_loss", f"input {tuple(x.shape)} and target {tuple(y.shape)} must have the same shape",
                         shapes=(x.shape, y.shape), rule="aisys does not broadcast inside losses (a common silent bug)")
    return Spec(() if reduction != "none" else tuple(x.shape), x.dtype)


def _mse_ref(x, y, reduction):
    d = x - y
    np.multiply(d, d, out=d)
    return _reduced(d, reduction)


def _mse_np(g, out, x, y, reduction):
    scale = 2.0 / x._data.size if reduction == "mean" else 2.0
    xd, yd = x._data, y._data
    return ((xd - yd) * g * scale if x.requires_grad else None,
            (yd - xd) * g * scale if y.requires_grad else None)


def _mse_scale(x, reduction):
    return 2.0 / x.numel() if reduction == "mean" else 2.0


defop("mse_loss", infer=_mse_infer, ref=_mse_ref, fusion=K.OPAQUE,
      cost=lambda ins, out, **a: Cost(3 * ins[0].numel, ins[0].nbytes + ins[1].nbytes + out.nbytes),
      chip=vector("sub", elements="input"), vjp_np=_mse_np,
      vjp=lambda g, out, x, y, reduction: ((x - y) * g * _mse_scale(x, reduction) if x.requires_grad else None,
                                           (y - x) * g * _mse_scale(x, reduction) if y.requires_grad else None),
      jvp=lambda t, out, x, y, reduction: _mse_jvp(t, x, y, reduction), torch_name="torch.nn.functional.mse_loss",
      saved=(0, 1))


def _mse_jvp(t, x, y, reduction):
    dt = t[0] if t[1] is None else (t[0] - t[1] if t[0] is not None else -t[1])
    v = (x - y) * dt * 2.0
    return {"mean": v.mean(), "sum": v.sum(), "none": v}[reduction]
