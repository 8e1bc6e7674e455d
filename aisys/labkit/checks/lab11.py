"""Checks for lab 11 — parallel training and large-model memory.

11.1 ``zero_memory(params, ndevices, stage)``: model-state bytes per device under ZeRO stage 0-3 with
     mixed-precision Adam (2 + 2 + 12 bytes per parameter). Golden values from the ZeRO paper (Rajbhandari et
     al., SC 2020, Figure 1): Ψ = 7.5 B, N_d = 64 gives 120 / 31.4 / 16.6 / 1.9 GB.
11.2 ``tp_mlp_forward(comm, x, w1, b1, w2, b2)``: a Megatron tensor-parallel MLP (ReLU) on this rank's shards,
     run on 2, 3 and 4 simulated ranks: equal to one device, with exactly one all-reduce.
11.3 ``one_f_one_b(p, m, stage)``: stage ``stage``'s 1F1B order; simulated, the pipeline must not deadlock,
     its bubble must be (p−1)/(m+p−1), and stage s must keep at most p−s micro-batches alive.
"""
from __future__ import annotations

import numpy as np

from aisys.dist.pipeline import bubble_fraction, pipeline_schedule, simulate_pipeline
from aisys.dist.zero import zero_memory as _zero_memory
from aisys.labkit import Checker, register
from aisys.labkit.checker import telltale
from aisys.labkit.learner import call as _call

# ---------------------------------------------------------------------------------------------------
# 11.1 ZeRO memory
# ---------------------------------------------------------------------------------------------------

PAPER = [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)]     # GB per device, Ψ = 7.5e9, N_d = 64


@register("11.1", title="16Ψ memory accounting and ZeRO stages 1/2/3", lab="11_parallel_training",
          reference="aisys.dist.zero:zero_memory",
          bad=[("aisys.labkit.checks.lab11:_zero_without_master_weights", 'fp32 master copy'),
               ("aisys.labkit.checks.lab11:_zero_stage1_shards_everything", 'shards only the optimizer state'),
               ("aisys.labkit.checks.lab11:_zero_stage2_shards_parameters", 'keeps all the fp16 weights'),
               ("aisys.labkit.checks.lab11:_zero_fp32_weights", 'mixed precision'),
               ("aisys.labkit.checks.lab11:_zero_stages_shifted", 'one stage too early'),
               ("aisys.labkit.checks.lab11:_zero_stage3_keeps_gradients", 'gradients too')])
def _check_11_1(fn, c: Checker):
    hint = ("per parameter: 2 B fp16 weights + 2 B fp16 gradients + K = 12 B fp32 optimizer state (master weights, "
            "momentum, variance). Stage 1 divides the 12Ψ by N_d, stage 2 also the gradients, stage 3 everything")
    for stage, gb in PAPER:
        got, error = _call(fn, 7.5e9, 64, stage)
        what = f"ZeRO paper, Ψ = 7.5 B, N_d = 64, stage {stage}"
        if error:
            c.fail(what, expected=f"{gb} GB", got=error, hint=hint)
        known = [(round(wrong(7.5e9, 64, stage) / 1e9, 1), words) for wrong, words in _ZERO_MISTAKES]
        c.close(round(float(got) / 1e9, 1), gb, what=f"{what} (GB = 10⁹ bytes)", rtol=0, atol=1e-9,
                hint=telltale(round(float(got) / 1e9, 1), known, hint))
    for _ in range(6):
        params = float(c.rng.integers(1, 200)) * 1e8
        n = int(c.rng.choice([1, 2, 3, 8, 12, 100, 1024]))
        stage = int(c.rng.integers(0, 4))
        got, error = _call(fn, params, n, stage)
        want = _zero_memory(params, n, stage)
        what = f"Ψ = {params:.3g}, N_d = {n}, stage {stage}"
        if error:
            c.fail(what, expected=want, got=error, hint=hint)
        c.close(float(got), want, what=f"{what}: bytes per device", rtol=1e-9,
                hint=telltale(float(got), _ZERO_MISTAKES, hint, args=(params, n, stage)))


def _zero_without_master_weights(params, ndevices, stage):
    return _zero_memory(params, ndevices, stage, optimizer_bytes=8)


def _zero_stage1_shards_everything(params, ndevices, stage):
    return _zero_memory(params, ndevices, 3 if stage >= 1 else 0)


def _zero_stage2_shards_parameters(params, ndevices, stage):
    return _zero_memory(params, ndevices, 3 if stage == 2 else stage)


def _zero_fp32_weights(params, ndevices, stage):
    return _zero_memory(params, ndevices, stage, param_bytes=4, grad_bytes=4, optimizer_bytes=8)


def _zero_stages_shifted(params, ndevices, stage):
    return _zero_memory(params, ndevices, min(3, stage + 1) if stage else 0)


def _zero_stage3_keeps_gradients(params, ndevices, stage):
    if stage == 3:
        return params * 2 / ndevices + params * 2 + params * 12 / ndevices
    return _zero_memory(params, ndevices, stage)


_ZERO_MISTAKES = [
    (_zero_without_master_weights, "Adam's fp32 state is K = 12 B per parameter: the fp32 master copy of the weights "
                                   "(4 B) besides momentum and variance (4 B each)"),
    (_zero_stage1_shards_everything, "stage 1 (P_os) shards only the optimizer state: every device still holds all "
                                     "the fp16 weights and gradients, (2 + 2)Ψ + 12Ψ/N_d"),
    (_zero_stage2_shards_parameters, "stage 2 (P_os+g) shards the optimizer state and the gradients but keeps all "
                                     "the fp16 weights on every device: 2Ψ + (2 + 12)Ψ/N_d"),
    (_zero_fp32_weights, "mixed precision: the weights and gradients a device computes with are fp16 (2 B each); "
                         "the fp32 copy of the weights is part of the optimizer's 12 B"),
    (_zero_stages_shifted, "each stage comes one stage too early: stage 1 shards the optimizer state, stage 2 adds "
                           "the gradients, stage 3 the weights"),
    (_zero_stage3_keeps_gradients, "stage 3 (P_os+g+p) shards the gradients too, like everything else: 16Ψ/N_d"),
]


# ---------------------------------------------------------------------------------------------------
# 11.2 tensor-parallel MLP
# ---------------------------------------------------------------------------------------------------

def _tp_case(c: Checker, d_in: int, hidden: int, d_out: int, batch: int):
    return (c.rng.standard_normal((batch, d_in)), c.rng.standard_normal((hidden, d_in)), c.rng.standard_normal(hidden),
            c.rng.standard_normal((d_out, hidden)), c.rng.standard_normal(d_out))


def _run_tp(fn, p, x, w1, b1, w2, b2):
    from aisys import dist
    from aisys.dist.schedule import chunk_bounds

    rows = chunk_bounds(w1.shape[0], p)

    def rank_fn(comm):
        lo, hi = int(rows[comm.rank]), int(rows[comm.rank + 1])
        start = len(comm.events)
        y = fn(comm, x.copy(), w1[lo:hi].copy(), b1[lo:hi].copy(), w2[:, lo:hi].copy(), b2.copy())
        return np.asarray(y), [e[1].split()[0] for e in comm.events[start:]]   # the collectives it called

    return dist.run(rank_fn, nprocs=p, timeout=60, backend="sim", echo=False)


@register("11.2", title="Tensor-parallel MLP: one all-reduce in the forward pass", lab="11_parallel_training",
          reference="aisys.dist.tensor_parallel:tp_mlp_forward",
          bad=[("aisys.labkit.checks.lab11:_tp_adds_the_bias_on_every_rank", 'add b2 once'),
               ("aisys.labkit.checks.lab11:_tp_forgets_the_allreduce", 'only its own part'),
               ("aisys.labkit.checks.lab11:_tp_relu_after_the_sum", 'the ReLU'),
               ("aisys.labkit.checks.lab11:_tp_gathers_instead_of_reducing", 'an all-gather moves p times the data'),
               ("aisys.labkit.checks.lab11:_tp_two_allreduces", 'a second all-reduce'),
               ("aisys.labkit.checks.lab11:_tp_averages_like_data_parallel", 'not averaged')])
def _check_11_2(fn, c: Checker):
    hint = ("this rank's hidden slice h = relu(x·w1ᵀ + b1) needs no communication (column parallel); its partial "
            "output h·w2ᵀ (row parallel) must be summed over the ranks — one comm.allreduce — and b2 added once")
    from aisys.dist import DistRunError

    for p, (d_in, hidden, d_out, batch) in ((2, (6, 8, 5, 3)), (3, (7, 10, 4, 2)), (4, (5, 12, 6, 4))):
        x, w1, b1, w2, b2 = _tp_case(c, d_in, hidden, d_out, batch)
        want = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
        what = f"{p} ranks, x {x.shape}, hidden {hidden} split {hidden // p}+ per rank"
        try:
            res = _run_tp(fn, p, x, w1, b1, w2, b2)
        except NotImplementedError:
            raise
        except DistRunError as exc:
            if "NotImplementedError" in str(exc):
                raise NotImplementedError(str(exc).splitlines()[0]) from None
            c.fail(what, expected="a forward pass on every rank", got=str(exc).splitlines()[0][:300], hint=hint)
        for r, (y, names) in enumerate(res):
            ok = y.shape == want.shape and np.allclose(y, want, rtol=1e-12, atol=1e-12)
            c.true(ok, what=f"{what}: rank {r}'s output equals one device", expected=np.round(want, 6),
                   got=np.round(y, 6) if y.shape == want.shape else f"shape {y.shape}",
                   hint=hint if ok else telltale(y, _tp_mistaken_outputs(p, r, x, w1, b1, w2, b2), hint,
                                                 rtol=1e-12, atol=1e-12))
            c.equal(names, ["allreduce"], what=f"{what}: rank {r}'s collectives in the forward pass",
                    hint="exactly one all-reduce (Megatron's operator g); an all-gather moves p times the data"
                    if "allgather" in names else
                    "a second all-reduce is not needed: the hidden slice needs none (each rank's rows of w1 give its "
                    "own hidden units), and after the one sum every rank already holds the output")


def _tp_mistaken_outputs(p, r, x, w1, b1, w2, b2):
    """What rank r's output would be after each classic mistake, with the words that name it."""
    from aisys.dist.schedule import chunk_bounds
    rows = chunk_bounds(w1.shape[0], p)
    parts = [np.maximum(x @ w1[lo:hi].T + b1[lo:hi], 0) @ w2[:, lo:hi].T for lo, hi in zip(rows[:-1], rows[1:])]
    total = sum(parts)
    return [
        (total + p * b2, "each rank's partial output is summed, so add b2 once, after the all-reduce (adding it on "
                         "every rank before the sum counts it p times)"),
        (parts[r] + b2, "rank r's h·w2ᵀ is only its own part of the output (its hidden units' share): the partial "
                        "outputs must be summed over the ranks, one comm.allreduce"),
        ((x @ w1.T + b1) @ w2.T + b2, "the ReLU is missing: it applies to each rank's own hidden slice, "
                                      "relu(x·w1ᵀ + b1), before w2 (it is elementwise, so no communication)"),
        (total / p + b2, "the partial outputs are parts of one sum, not replicas: they are summed, not averaged "
                         "(averaging is data parallelism's gradient rule)"),
    ]


def _tp_adds_the_bias_on_every_rank(comm, x, w1, b1, w2, b2):
    return comm.allreduce(np.maximum(x @ w1.T + b1, 0) @ w2.T + b2)


def _tp_forgets_the_allreduce(comm, x, w1, b1, w2, b2):
    return np.maximum(x @ w1.T + b1, 0) @ w2.T + b2


def _tp_relu_after_the_sum(comm, x, w1, b1, w2, b2):
    return comm.allreduce((x @ w1.T + b1) @ w2.T) + b2


def _tp_gathers_instead_of_reducing(comm, x, w1, b1, w2, b2):
    return comm.allgather(np.maximum(x @ w1.T + b1, 0) @ w2.T).sum(axis=0) + b2


def _tp_two_allreduces(comm, x, w1, b1, w2, b2):
    h = np.maximum(x @ w1.T + b1, 0)
    y = comm.allreduce(h @ w2.T)
    return comm.allreduce(y / comm.size) + b2


def _tp_averages_like_data_parallel(comm, x, w1, b1, w2, b2):
    return comm.allreduce(np.maximum(x @ w1.T + b1, 0) @ w2.T) / comm.size + b2


# ---------------------------------------------------------------------------------------------------
# 11.3 the 1F1B schedule and its bubble
# ---------------------------------------------------------------------------------------------------

@register("11.3", title="1F1B pipeline order and the bubble (p−1)/(m+p−1)", lab="11_parallel_training",
          reference="aisys.dist.pipeline:one_f_one_b_order",
          bad=[("aisys.labkit.checks.lab11:_pp_gpipe_order", 'GPipe'),
               ("aisys.labkit.checks.lab11:_pp_one_warmup_too_many", 'one warm-up forward too many'),
               ("aisys.labkit.checks.lab11:_pp_warmup_by_stage_index", 'distance to the last stage'),
               ("aisys.labkit.checks.lab11:_pp_backward_first", 'a backward needs its forward'),
               ("aisys.labkit.checks.lab11:_pp_forgets_the_cooldown", 'cool-down'),
               ("aisys.labkit.checks.lab11:_pp_no_warmup", 'fill the pipeline')])
def _check_11_3(fn, c: Checker):
    hint = ("stage s runs min(p−s−1, m) warm-up forwards, then alternates one forward and one backward, then runs "
            "the remaining backwards; so it never holds more than p−s micro-batches' activations")
    for p, m in ((2, 1), (2, 4), (4, 4), (4, 8), (5, 3), (8, 16)):
        order = []
        for s in range(p):
            ops, error = _call(fn, p, m, s)
            if error:
                c.fail(f"p = {p}, m = {m}, stage {s}", expected=pipeline_schedule(p, m)[s], got=error, hint=hint)
            order.append([(str(op), int(i)) for op, i in ops])
        what = f"p = {p} stages, m = {m} micro-batches"
        _pp_every_op_once(c, order, p, m, what)
        try:
            rep = simulate_pipeline(p, m, order=order, t_forward=1.0, t_backward=2.0)
        except ValueError as exc:
            c.fail(what, expected="a pipeline that runs", got=str(exc).splitlines()[0][:300],
                   hint=_pp_diagnosis(order, p, m, hint))
        c.close(rep.bubble, bubble_fraction(p, m), what=f"{what}: simulated bubble = (p−1)/(m+p−1)", rtol=0,
                atol=1e-12, hint=_pp_diagnosis(order, p, m, hint))
        limit = [min(m, p - s) for s in range(p)]
        c.true(all(a <= b for a, b in zip(rep.peak_activations, limit)),
               what=f"{what}: activations alive per stage at most p−s", expected=limit, got=rep.peak_activations,
               hint=_pp_diagnosis(order, p, m, "1F1B starts backwards early to free the activations"))


def _pp_every_op_once(c: Checker, order, p: int, m: int, what: str) -> None:
    """Each stage runs F and B of every micro-batch once, each backward after its forward."""
    missing, late = [], []
    for s, ops in enumerate(order):
        missing = missing or [(s, f"{kind}{i}") for kind in "FB" for i in range(m) if ops.count((kind, i)) == 0]
        late = late or [(s, i) for i in range(m) if ("B", i) in ops and ("F", i) in ops
                        and ops.index(("B", i)) < ops.index(("F", i))]
    s = missing[0][0] if missing else 0
    c.true(not missing, what=f"{what}: every stage runs F and B of every micro-batch",
           expected=f"F0..F{m - 1} and B0..B{m - 1}",
           got=f"stage {s}: {', '.join(x for _, x in missing)} missing" if missing else "",
           hint=(f"after the steady state comes the cool-down: stage {s} still owes the backwards of its "
                 f"{min(p - s - 1, m)} warm-up micro-batches (min(p−s−1, m)), run one after the other at the end"
                 if missing and all(x.startswith("B") for _, x in missing) else
                 "every stage runs the forward and the backward of each of the m micro-batches"))
    c.true(not late, what=f"{what}: every backward after its forward", expected="F i before B i on every stage",
           got=f"stage {late[0][0]} runs B{late[0][1]} before F{late[0][1]}" if late else "",
           hint="a backward needs its forward: B i uses the activations that F i saved (and the gradient from "
                "the next stage, which only exists once F i has gone down the whole pipeline)")


def _pp_diagnosis(order, p: int, m: int, otherwise: str) -> str:
    """Name the warm-up mistake: how many forwards each stage runs before its first backward."""
    leads = [next((k for k, (kind, _) in enumerate(ops) if kind == "B"), len(ops)) for ops in order]
    want = [min(p - s, m) for s in range(p)]     # p−s−1 warm-ups, then the first forward of the steady state
    if leads == want:
        return otherwise
    if leads == [min(s + 1, m) for s in range(p)] and any(v > 1 for v in leads):
        return (f"count each stage's warm-up by its distance to the last stage, p−s−1 forwards ({want[0] - 1} on "
                f"stage 0), not by its own index s (forwards before the first backward, stage by stage: {leads})")
    if all(v == 1 for v in leads):
        return (f"no warm-up: stage s starts backwards after one forward, but micro-batch 0's gradient returns only "
                f"after crossing the later stages; first fill the pipeline with p−s−1 warm-up forwards "
                f"({p - 1} on stage 0), or the stages idle")
    s = next(k for k in range(p) if leads[k] != want[k])
    if leads[s] == m and m > p - s:
        return (f"stage {s} runs all {m} forwards before its first backward: that is GPipe's order, which keeps "
                f"all m micro-batches' activations alive; 1F1B starts backwards after p−s forwards")
    if leads[s] == want[s] + 1:
        return (f"one warm-up forward too many on stage {s}: it needs p−s−1 = {p - s - 1} warm-ups, then one "
                f"forward and one backward in turn; the extra micro-batch stays alive")
    if leads[s] < want[s]:
        return (f"stage {s} starts backwards after {leads[s]} forward(s): first fill the pipeline with "
                f"p−s−1 = {p - s - 1} warm-up forwards, or the stage idles")
    return f"stage {s} runs {leads[s]} forwards before its first backward, 1F1B {want[s]}: " + otherwise


def _pp_gpipe_order(p, m, stage):
    return pipeline_schedule(p, m, "gpipe")[stage]


def _one_f_one_b(p, m, warm):
    warm = max(0, min(warm, m))
    ops = [("F", i) for i in range(warm)]
    for i in range(m - warm):
        ops += [("F", warm + i), ("B", i)]
    return ops + [("B", i) for i in range(m - warm, m)]


def _pp_one_warmup_too_many(p, m, stage):
    return _one_f_one_b(p, m, p - stage)


def _pp_warmup_by_stage_index(p, m, stage):
    return _one_f_one_b(p, m, stage)


def _pp_backward_first(p, m, stage):
    return [op for i in range(m) for op in (("B", i), ("F", i))]


def _pp_forgets_the_cooldown(p, m, stage):
    warm = min(p - stage - 1, m)
    return _one_f_one_b(p, m, warm)[:2 * m - warm]      # the last `warm` backwards never run


def _pp_no_warmup(p, m, stage):
    return _one_f_one_b(p, m, 0)
