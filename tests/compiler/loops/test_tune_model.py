"""The tuner's learned cost model (AutoTVM's idea): nest features, ridge regression on log cost around an
analytic estimate, and model-guided search measured against random search — on simulated cycles, so
every number here is deterministic."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aisys.compiler import loops
from aisys.compiler.loops.tune import CostModel, gemm_template, levels_of, nest_features, spearman

# a 64³ GEMM on a small two-level cache (4 KiB L1, 32 KiB L2) behaves like a large GEMM on a real one, in
# milliseconds per trial
SIM = loops.CacheSim([dict(size=4096, ways=4, line=64, latency=4), dict(size=32768, ways=8, line=64, latency=14)],
                     200)
LEVELS, MEMORY = levels_of(SIM)


@pytest.fixture(scope="module")
def gemm():
    template, space = gemm_template(64, 64, 64)
    measure, seen = loops.simulated_cost(SIM), {}

    def cached(s):                       # the same nest is simulated once across the searches of this module
        key = str(loops.lower(s))
        if key not in seen:
            seen[key] = measure(s)
        return seen[key]
    return template, space, cached


def test_spearman_matches_closed_forms():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties take their average rank: ranks (0.5, 0.5, 2, 3) against (0, 1, 2, 3)
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)


def test_nest_features_count_accesses_and_see_register_blocking():
    """The access count read off the nest equals the simulator's stream length, registers excluded."""
    feats = {}
    for name in ("naive", "blocked", "tuned"):
        s = loops.gemm(32, 32, 32, name)
        feats[name] = nest_features(s, LEVELS, MEMORY)
        assert 2 ** feats[name]["log2 accesses"] - 1 == pytest.approx(len(loops.trace_addresses(s)))
    assert feats["naive"]["stride >1 share"] > 0.4     # B[k, j] walks a column in the innermost k loop
    assert feats["blocked"]["stride >1 share"] == 0
    assert feats["tuned"]["log2 vector width"] == 5 and feats["tuned"]["log2 unroll"] == 5
    # C's tile in registers: half the blocked nest's memory traffic, and an estimate to match
    assert feats["tuned"]["log2 accesses"] < feats["blocked"]["log2 accesses"] - 0.9
    assert feats["tuned"]["log2 est. cycles"] < feats["blocked"]["log2 est. cycles"]


def test_model_ranks_held_out_schedules(gemm):
    """Fitted on 12 random trials, the model orders 24 other random schedules like the simulator does."""
    template, space, measure = gemm
    train = loops.Tuner(template, space, measure, seed=100).random(12, progress=False)
    held = loops.Tuner(template, space, measure, seed=101).random(24, progress=False)
    cm = CostModel(levels=LEVELS, memory=MEMORY)
    cm.fit([cm.featurize(t.knobs, template(**t.knobs)) for t in train.trials], [t.cost for t in train.trials])
    pred = cm.predict([cm.featurize(t.knobs, template(**t.knobs)) for t in held.trials])
    rho = spearman(pred, [t.cost for t in held.trials])
    assert rho > 0.7, f"held-out rank correlation {rho:.2f}"


def test_model_guided_search_beats_random_search(gemm):
    """Same seeds, same budget of 10 measured trials, a space of 600 knob settings: the model-guided
    search's best schedules are faster on the simulator in total, and strictly on seed 0."""
    template, space, measure = gemm
    best = {"random": [], "model": []}
    for seed in range(4):
        best["random"].append(loops.Tuner(template, space, measure, seed=seed).random(10, progress=False).best.cost)
        t = loops.Tuner(template, space, measure, seed=seed)
        log = t.model_search(10, model=CostModel(levels=LEVELS, memory=MEMORY), progress=False)
        assert len(log.trials) == 10
        pred, meas = log.predictions()
        assert len(pred) == 8 and np.all(pred > 0)        # every trial after the first two was predicted first
        best["model"].append(log.best.cost)
    assert sum(best["model"]) < sum(best["random"]), best
    assert best["model"][0] < 0.95 * best["random"][0], best
    assert "rank correlation" in log.summary()


def test_model_guided_search_skips_illegal_and_duplicate_schedules():
    C = loops.gemm_compute(16, 16, 16)

    def template(t, order):
        s = loops.Schedule(C)
        if t == 0:
            s.split("i", 0)                                # illegal: a split factor ≤ 0 raises ScheduleError
        io, ii = s.split("i", t)
        if order == "k inner":
            s.reorder(io, "j", ii, "k")
        return s
    tuner = loops.Tuner(template, dict(t=[0, 4, 8, 16], order=["as written", "k inner"]),
                        loops.simulated_cost(SIM), seed=0)
    log = tuner.model_search(20, progress=False)
    assert all(math.isfinite(t.cost) for t in log.trials)      # the illegal t=0 was never measured
    assert len({str(loops.lower(template(**t.knobs))) for t in log.trials}) == len(log.trials)
