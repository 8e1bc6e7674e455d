"""Conv + BatchNorm folding (05Optimize/02Basic "Conv + BN + Act"; 03Frontend/03OPFusion).

In inference, batch norm uses fixed statistics, so it is a per-channel affine map and folds into
the convolution that feeds it:

    bn(conv(x, W, b)) = γ·(conv(x, W, b) − μ)/√(σ²+ε) + β = conv(x, W′, b′)
    W′ = γ·W/√(σ²+ε)        (scale each output channel's filter)
    b′ = γ·(b − μ)/√(σ²+ε) + β

The conv bias ``b`` must be kept (b = 0 when the conv has none). The course's own snippet
(04Inference/05Optimize/02Basic.md, ``fuse_conv_bn``) reads ``beta = bn.weight; gamma = bn.bias`` —
γ and β swapped — and computes ``b′ = β − γ·μ/√(σ²+ε)``, dropping the conv bias; lab 04's check
catches both mistakes.

Only eval-mode BN folds: mean, var, weight and bias must be parameters or constants. The new weights
become new parameters (named ``<weight>.bn_folded``): folding freezes the model, as every converter does.
"""
from __future__ import annotations

import numpy as np

from ..rewriter import Rewriter


def fold_conv_bn_weights(weight, bias, gamma, beta, mean, var, eps):
    """(W′, b′) with bn(conv(x, W, b)) == conv(x, W′, b′); ``bias`` may be None. Computed in float64,
    returned in the weight's dtype."""
    w = np.asarray(weight, dtype=np.float64)
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    w_folded = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    b_folded = (b - np.asarray(mean, np.float64)) * scale + np.asarray(beta, np.float64)
    dt = np.asarray(weight).dtype
    return w_folded.astype(dt), b_folded.astype(dt)


def make_fold_conv_bn(fold_weights=fold_conv_bn_weights):
    """A conv+BN folding pass that computes the new weights with ``fold_weights`` (the library's, or a
    learner's from lab 04 — the pass log and the PassStepper then show their function at work)."""

    def fold_conv_bn(rw: Rewriter) -> None:
        """Fold every eval-mode batch_norm into the conv2d that feeds it."""
        g = rw.graph
        for bn in list(g.nodes.values()):
            if bn.id not in g.nodes or bn.op != "batch_norm":
                continue
            x_id, mean_id, var_id, gamma_id, beta_id = bn.inputs
            conv = g.nodes[x_id]
            cand = f"fold batch_norm %{bn.id} into %{x_id}"
            if conv.op != "conv2d":
                rw.reject(cand, f"its input %{x_id} is {conv.op}, not conv2d", rule="fold_conv_bn", nodes=(bn.id, x_id))
                continue
            stats = {"running_mean": mean_id, "running_var": var_id, "weight (γ)": gamma_id, "bias (β)": beta_id,
                     "conv weight": conv.inputs[1]}
            if len(conv.inputs) > 2:
                stats["conv bias"] = conv.inputs[2]
            dynamic = [f"{k} %{i} ({g.nodes[i].op})" for k, i in stats.items() if g.nodes[i].op not in ("param", "const")]
            if dynamic:
                rw.reject(cand, "computed at run time: " + ", ".join(dynamic) + " — only eval-mode batch norm with "
                          "fixed statistics folds (training mode normalizes with the batch's own statistics)",
                          rule="fold_conv_bn", nodes=(bn.id, x_id))
                continue
            others = sorted({u for u in g.users()[x_id] if u != bn.id})
            if others or x_id in g.outputs:
                who = [f"%{u}" for u in others] + (["the graph output"] if x_id in g.outputs else [])
                rw.reject(cand, f"conv %{x_id} is also read by {', '.join(who)}: folding BN into its weights "
                                f"would change what the others see", rule="fold_conv_bn", nodes=(bn.id, x_id))
                continue
            W = g.nodes[conv.inputs[1]]
            b = g.nodes[conv.inputs[2]].value if len(conv.inputs) > 2 else None
            w_new, b_new = fold_weights(W.value, b, g.nodes[gamma_id].value, g.nodes[beta_id].value,
                                        g.nodes[mean_id].value, g.nodes[var_id].value, bn.attrs["eps"])
            w_new, b_new = np.asarray(w_new), np.asarray(b_new)
            if w_new.shape != tuple(W.shape) or b_new.shape != (W.shape[0],):
                raise ValueError(f"fold_conv_bn: fold_weights returned W′ {w_new.shape} and b′ {b_new.shape}; expected "
                                 f"{tuple(W.shape)} and ({W.shape[0]},) (one bias per output channel)")
            prov = tuple(sorted(set(conv.provenance) | set(bn.provenance)))
            if W.op == "param":
                wn = rw.add_param(rw.fresh_name(f"{W.name or 'weight'}.bn_folded"), w_new.astype(W.dtype.np), provenance=prov)
                stem = (W.name or "weight").removesuffix(".weight")
                bname = (g.nodes[conv.inputs[2]].name if len(conv.inputs) > 2 else "") or f"{stem}.bias"
                bn_ = rw.add_param(rw.fresh_name(f"{bname}.bn_folded"), b_new.astype(W.dtype.np), provenance=prov)
            else:
                wn = rw.add_const(w_new.astype(W.dtype.np), provenance=prov)
                bn_ = rw.add_const(b_new.astype(W.dtype.np), provenance=prov)
            new = rw.add("conv2d", (conv.inputs[0], wn.id, bn_.id), dict(conv.attrs), provenance=prov)
            rw.replace(bn.id, new.id, rule="fold_conv_bn",
                       note=f"batch_norm %{bn.id}(conv2d %{x_id}) → conv2d %{new.id} with W′=γW/√(σ²+ε), b′=γ(b−μ)/√(σ²+ε)+β")

    fold_conv_bn.fold_weights = fold_weights
    return fold_conv_bn


fold_conv_bn = make_fold_conv_bn()
