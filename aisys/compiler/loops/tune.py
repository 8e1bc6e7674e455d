"""Auto-tuning: search a schedule template's knobs for the fastest (or fewest simulated cycles) variant.

A template is a function ``knobs -> Schedule``; the space maps each knob to its choices. Random search
samples it; simulated annealing walks from the best point so far, changing one knob at a time and
accepting a worse point with probability exp(−Δ/T) as T cools (Kirkpatrick et al., 1983). A trial is
measured by simulated cycles (``CacheSim`` on the nest's address stream: deterministic, seconds) or real
time (median of repeats of the numba kernel, one thread). Every trial goes into the tuning log.

Model-guided search (:meth:`Tuner.model_search`) is AutoTVM's idea (Chen et al., "Learning to Optimize
Tensor Programs", NeurIPS 2018): measuring is expensive, predicting is cheap, so a :class:`CostModel` fitted
on the trials so far ranks many candidate schedules and only the few it ranks best are measured. Its
features are the knobs and what the lowered nest says without running it (:func:`nest_features`: memory
accesses, an estimate of the misses per cache level from the footprint of each loop level, how the
innermost loop walks memory); the model is ridge regression on log cost. The log keeps each trial's
prediction next to its measurement.
"""
from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np

from ...framework.progress import ProgressBar, progress_enabled
from .schedule import ScheduleError
from .te import LoopsError


@dataclass
class Trial:
    knobs: dict
    cost: float                # cycles or seconds (inf: the knobs gave an illegal schedule)
    misses: int = 0
    error: str = ""
    predicted: float = math.nan   # the cost model's prediction before it was measured (model-guided search)


@dataclass
class TuningLog:
    measure: str
    trials: list = field(default_factory=list)

    @property
    def best(self) -> Trial:
        ok = [t for t in self.trials if math.isfinite(t.cost)]
        if not ok:
            raise LoopsError("tuning log: no legal trial")
        return min(ok, key=lambda t: t.cost)

    def curve(self) -> list[float]:
        """Best cost so far after each trial (the tuning curve)."""
        out, best = [], math.inf
        for t in self.trials:
            best = min(best, t.cost)
            out.append(best)
        return out

    def predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """(predicted, measured) costs of the trials the cost model predicted before they were measured."""
        ts = [t for t in self.trials if math.isfinite(t.predicted) and math.isfinite(t.cost)]
        return np.array([t.predicted for t in ts]), np.array([t.cost for t in ts])

    def summary(self) -> str:
        b = self.best
        text = (f"{len(self.trials)} trials ({self.measure}); best {b.cost:.4g} with {b.knobs}; "
                f"first {self.trials[0].cost:.4g}")
        pred, meas = self.predictions()
        if len(pred) >= 3:
            text += (f"; cost model: {len(pred)} trials predicted before measuring, rank correlation "
                     f"{spearman(pred, meas):.2f}")
        return text


def simulated_cost(sim, level: int = 0):
    """A measure: the simulated cycles of a schedule's nest on ``sim`` (and its L1 misses)."""
    from .kernel import trace_addresses

    def measure(s):
        rep = sim.run(trace_addresses(s))
        return float(rep.cycles), rep.misses(level)
    return measure


def real_time(inputs, repeats: int = 5):
    """A measure: the median wall time of the compiled kernel on ``inputs`` (call it with one thread)."""
    from .kernel import build

    def measure(s):
        f = build(s)
        f(*inputs)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(*inputs)
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts)), 0
    return measure


class Tuner:
    """``Tuner(template, space, measure)``; ``random(n)`` or ``anneal(n)`` fills ``log``."""

    def __init__(self, template, space: dict, measure, name: str = "cycles", seed: int = 0):
        if not space or any(not list(v) for v in space.values()):
            raise LoopsError(f"Tuner: every knob needs at least one choice, got {space}")
        self.template, self.space, self.measure = template, {k: list(v) for k, v in space.items()}, measure
        self.log = TuningLog(name)
        self.rng = random.Random(seed)
        self._seen: dict = {}

    def evaluate(self, knobs: dict) -> Trial:
        key = tuple(sorted(knobs.items()))
        if key in self._seen:
            t = self._seen[key]
        else:
            try:
                cost, misses = self.measure(self.template(**knobs))
                t = Trial(dict(knobs), cost, misses)
            except (ScheduleError, LoopsError) as e:
                t = Trial(dict(knobs), math.inf, 0, str(e))
            self._seen[key] = t
        self.log.trials.append(t)
        return t

    def sample(self) -> dict:
        return {k: self.rng.choice(v) for k, v in self.space.items()}

    def random(self, trials: int = 50, progress: bool | None = None) -> TuningLog:
        """``trials`` random points of the space. Interrupting (Ctrl-C) keeps the trials made so far in ``log``."""
        bar = self._bar(trials, "random search", progress)
        try:
            for _ in range(trials):
                self.evaluate(self.sample())
                bar.update(best=self._best_cost())
        finally:
            bar.close()
        return self.log

    def _best_cost(self) -> float:
        return min((t.cost for t in self.log.trials), default=math.inf)

    def _bar(self, trials: int, desc: str, progress: bool | None) -> ProgressBar:
        """A progress bar for searches long enough to wait on (20 trials or more, unless told)."""
        return ProgressBar(trials, desc=f"tuning {self.log.measure}: {desc}",
                           enabled=progress_enabled(trials >= 20 if progress is None else progress))

    def anneal(self, trials: int = 50, t0: float = 0.3, start: dict | None = None,
               progress: bool | None = None) -> TuningLog:
        """Simulated annealing on log-cost: neighbours change one knob to an adjacent choice. Interrupting
        (Ctrl-C) keeps the trials made so far in ``log``."""
        bar = self._bar(trials, "simulated annealing", progress)
        try:
            self._anneal(trials, t0, start, bar)
        finally:
            bar.close()
        return self.log

    def _anneal(self, trials, t0, start, bar) -> None:
        cur = self.evaluate(start or self.sample())
        bar.update(best=self._best_cost())
        for n in range(1, trials):
            temp = t0 * (1 - n / trials) + 1e-3
            k = self.rng.choice(list(self.space))
            opts = self.space[k]
            i = opts.index(cur.knobs[k]) + self.rng.choice((-1, 1))
            nxt = dict(cur.knobs)
            nxt[k] = opts[min(max(i, 0), len(opts) - 1)]
            t = self.evaluate(nxt)
            if math.isfinite(t.cost) and (not math.isfinite(cur.cost) or t.cost <= cur.cost or
                                         self.rng.random() < math.exp(-(math.log(t.cost) - math.log(cur.cost)) / temp)):
                cur = t
            bar.update(best=self._best_cost())


    # -- model-guided search ---------------------------------------------------------------------------
    def candidates(self, pool: int = 2000) -> list[dict]:
        """The whole space when it has at most ``pool`` points, else ``pool`` distinct random ones."""
        size = math.prod(len(v) for v in self.space.values())
        if size <= pool:
            keys = list(self.space)
            return [dict(zip(keys, combo)) for combo in itertools.product(*self.space.values())]
        seen, out = set(), []
        while len(out) < pool:
            k = self.sample()
            key = tuple(sorted(k.items()))
            if key not in seen:
                seen.add(key)
                out.append(k)
        return out

    def model_search(self, trials: int = 50, init: int = 2, batch: int = 2, model: "CostModel | None" = None,
                     pool: int = 2000, explore: float = 0.1, progress: bool | None = None) -> TuningLog:
        """AutoTVM-style search: ``init`` random trials, then rounds of fitting ``model`` (a fresh
        :class:`CostModel` by default) on every legal trial so far, ranking all unmeasured candidates
        (:meth:`candidates`) by predicted cost and measuring the best ``batch`` (a fraction ``explore`` of
        them drawn at random instead, so a wrong model still sees new ground). Knobs whose schedule is
        illegal are dropped while featurizing, without a measurement, and knobs that lower to the same loop
        nest as others count once. Each trial records its prediction."""
        self.model = model = model or CostModel()
        bar = self._bar(trials, "model-guided search", progress)
        try:
            from .lower import lower
            pool_knobs = self.candidates(pool)
            feats, programs = {}, set()
            for k in pool_knobs:
                try:
                    f = lower(self.template(**k))
                except (ScheduleError, LoopsError):
                    continue
                text = str(f)
                if text not in programs:           # knobs that make the same loop nest: one candidate
                    programs.add(text)
                    feats[_key(k)] = model.featurize(k, f)
            todo = [k for k in pool_knobs if _key(k) in feats]
            if not todo:
                raise LoopsError("Tuner.model_search: every candidate schedule is illegal")
            self.rng.shuffle(todo)
            done = 0
            for k in todo[:min(init, trials)]:
                self.evaluate(k)
                done += 1
                bar.update(best=self._best_cost())
            while done < trials:
                measured = {_key(t.knobs) for t in self.log.trials}
                left = [k for k in todo if _key(k) not in measured]
                if not left:
                    break
                ok = [t for t in self.log.trials if math.isfinite(t.cost) and _key(t.knobs) in feats]
                model.fit([feats[_key(t.knobs)] for t in ok], [t.cost for t in ok])
                pred = model.predict([feats[_key(k)] for k in left])
                order = list(np.argsort(pred, kind="stable"))
                n = min(batch, trials - done, len(left))
                picks = []
                for _ in range(n):
                    if self.rng.random() < explore:
                        rest = [i for i in order if i not in picks]
                        picks.append(self.rng.choice(rest))
                    else:
                        picks.append(next(i for i in order if i not in picks))
                for i in picks:
                    t = self.evaluate(left[i])
                    t.predicted = float(pred[i])
                    done += 1
                    bar.update(best=self._best_cost())
        finally:
            bar.close()
        return self.log

def search(space: dict, cost, trials: int = 50, seed: int = 0) -> dict:
    """Lab 07.3's reference: simulated annealing over ``space`` ({knob: [choices]}) for at most ``trials``
    evaluations of ``cost(knobs)``; returns the best knobs found (reproducible for a seed)."""
    t = Tuner(lambda **k: k, space, lambda knobs: (cost(knobs), 0), name="cost", seed=seed)
    t.random(min(10, trials), progress=False)
    best = t.log.best.knobs
    t.anneal(trials - min(10, trials), start=best, progress=False) if trials > 10 else None
    return dict(t.log.best.knobs)


def _key(knobs: dict) -> tuple:
    return tuple(sorted(knobs.items(), key=lambda kv: kv[0]))


# ---- the cost model ---------------------------------------------------------------------------------------
def spearman(a, b) -> float:
    """Spearman's rank correlation (ties get their average rank)."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den else 0.0


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):                      # ties: the average of their ranks
        m = x == v
        if m.sum() > 1:
            r[m] = r[m].mean()
    return r


#: cache levels the nest features estimate misses for, (bytes, line bytes, latency in cycles), and the
#: latency of memory: Zen 4's L1d, L2, L3 slice, DRAM (the simulator's "zen4" preset)
DEFAULT_LEVELS = ((32768, 64, 4), (1 << 20, 64, 14), (4 << 20, 64, 47))
DEFAULT_MEMORY = 200


def levels_of(sim) -> tuple:
    """(levels, memory latency) of a :class:`CacheSim`, for :class:`CostModel`."""
    return tuple((lv["size"], lv["line"], lv["latency"]) for lv in sim.levels), sim.memory_latency


def nest_features(s, levels=DEFAULT_LEVELS, memory: int = DEFAULT_MEMORY) -> dict:
    """What a schedule's lowered nest says about its cost without running it, as log2 counts: memory
    accesses (loads and stores not kept in registers) and innermost iterations; per cache level an
    estimate of the misses (for each statement, the outermost loop level whose footprint — lines touched
    by the loops inside it, per array — fits in the level; the loops outside it each reload that
    footprint); the share of accesses whose innermost loop walks memory with stride 0, 1 or more
    elements; the widths of vectorized and unrolled loops; and the cycles those estimates add up to
    (accesses at the first level's latency, each level's misses at the next one's: an analytic model)."""
    from .ir import Allocate, For, If, Let, LoweredFunc, Seq, Store
    from .kernel import _register_buffers
    from .lower import linear, lower
    f = s if isinstance(s, LoweredFunc) else lower(s)
    regs = _register_buffers(f)
    acc = iters = 0.0
    misses = [0.0] * len(levels)
    stride = {"0": 0.0, "1": 0.0, ">1": 0.0}
    vec = unroll = 1

    def go(st, loops, lets):
        nonlocal acc, iters, vec, unroll
        if isinstance(st, Seq):
            for x in st.stmts:
                go(x, loops, lets)
        elif isinstance(st, For):
            if st.kind == "vectorized":
                vec = max(vec, st.extent)
            elif st.kind == "unrolled":
                unroll = max(unroll, st.extent)
            go(st.body, loops + [(st.var, st.extent)], lets)
        elif isinstance(st, Let):
            go(st.body, loops, {**lets, st.var: _expand(st.value, lets)})
        elif isinstance(st, (If, Allocate)):
            go(st.body, loops, lets)
        elif isinstance(st, Store):
            n_iter = math.prod(e for _, e in loops)
            iters += n_iter
            reads = [(n.value, n.args) for n in _loads(st.value)] + [(st.buffer, st.indices)]
            reads = [(b, [_expand(i, lets) for i in ix]) for b, ix in reads if id(b) not in regs]
            acc += n_iter * len(reads)
            per_buf = {}
            for b, ix in reads:
                coef = _address_coefficients(b, ix, loops, linear)
                inner = coef.get(loops[-1][0], 0) if loops else 0
                stride["0" if inner == 0 else "1" if abs(inner) == 1 else ">1"] += n_iter
                per_buf.setdefault(id(b), []).append((b, coef))
            for lvl, (size, line, _) in enumerate(levels):
                misses[lvl] += _estimate_misses(per_buf, loops, size, line)

    go(f.body, [], {})
    total = max(sum(stride.values()), 1.0)
    out = {"log2 accesses": math.log2(acc + 1), "log2 iterations": math.log2(iters + 1)}
    for lvl, m in enumerate(misses):
        out[f"log2 est. L{lvl + 1} misses"] = math.log2(m + 1)
    out.update({f"stride {k} share": v / total for k, v in stride.items()})
    out["log2 vector width"], out["log2 unroll"] = math.log2(vec), math.log2(unroll)
    lat = [lv[2] for lv in levels] + [memory]
    m = [acc] + [min(x, acc) for x in misses]
    cycles = sum(m[k] * (lat[k] - (lat[k - 1] if k else 0)) for k in range(len(lat)))
    out["log2 est. cycles"] = math.log2(cycles + 1)
    return out


def _loads(n):
    from .te import walk
    return [x for x in walk(n) if x.op == "load"]


def _expand(n, lets):
    """An index with Let-bound names replaced by their values in loop variables."""
    from .te import substitute
    if not lets:
        return n
    return substitute(n, lambda x: lets[x.value] if x.op == "var" and x.value in lets else None)


def _address_coefficients(buf, idx, loops, linear) -> dict:
    """Elements the address moves per step of each loop (row-major); a non-affine index counts as
    a new element per step of every loop it uses."""
    strides, st = [], 1
    for n in reversed(buf.shape):
        strides.append(st)
        st *= n
    strides.reverse()
    loop_vars = {v for v, _ in loops}
    coef: dict = {}
    for i, stv in zip(idx, strides):
        form = linear(i)
        if form is None:
            from .te import walk
            for x in walk(i):
                if x.op == "var" and x.value in loop_vars:
                    coef[x.value] = coef.get(x.value, 0) + stv
            continue
        for atom, c in form[0].values():
            if atom.op == "var":
                coef[atom.value] = coef.get(atom.value, 0) + c * stv
            else:
                from .te import walk
                for x in walk(atom):
                    if x.op == "var" and x.value in loop_vars:
                        coef[x.value] = coef.get(x.value, 0) + stv
    return coef


def _footprint_lines(per_buf, loops, depth, line) -> float:
    """Distinct cache lines the loops from ``depth`` inward touch, summed over arrays (per array the
    largest of its accesses): the smallest-stride loop covers a contiguous span, the others multiply."""
    total = 0.0
    ranging = loops[depth:]
    for accesses in per_buf.values():
        best = 1.0
        for b, coef in accesses:
            isz = b.dtype.itemsize
            steps = sorted((abs(coef.get(v, 0)), e) for v, e in ranging if coef.get(v, 0))
            lines = 1.0
            for k, (c, e) in enumerate(steps):
                if k == 0 and c * isz < line:
                    lines *= math.ceil(((e - 1) * c + 1) * isz / line)
                else:
                    lines *= e
            cap = math.ceil(math.prod(b.shape) * isz / line)
            best = max(best, min(lines, cap))
        total += best
    return total


def _estimate_misses(per_buf, loops, size, line) -> float:
    cap = size / line
    for depth in range(len(loops) + 1):
        fp = _footprint_lines(per_buf, loops, depth, line)
        if fp <= cap:
            return fp * math.prod(e for _, e in loops[:depth])
    return float(math.prod(e for _, e in loops)) * len(per_buf)


class CostModel:
    """Log cost = log of the analytic cycle estimate (:func:`nest_features`) + a learned correction: ridge
    regression on the candidate's features — its knobs (numbers as log2, choices one-hot) and the nest
    features — fitted on the measured trials. Unfitted, it ranks by the analytic estimate alone; each
    trial teaches it where that estimate is wrong (and, for real time, the clock: the intercept).
    ``featurize(knobs, schedule)`` gives the vector, ``fit(X, costs)`` and ``predict(X)`` (in cost units).
    ``alpha`` is the ridge penalty on standardized features; ``levels``/``memory`` the caches the
    estimate assumes (:func:`levels_of` a simulator's)."""

    def __init__(self, alpha: float = 3.0, levels=DEFAULT_LEVELS, memory: int = DEFAULT_MEMORY, knobs: bool = True):
        self.alpha, self.levels, self.memory, self.use_knobs = float(alpha), levels, memory, knobs
        self.mean_y = 0.0
        self.names: list[str] = []
        self._choices: dict = {}
        self.coef = None

    def featurize(self, knobs: dict, schedule) -> np.ndarray:
        feats = {}
        for k, v in sorted(knobs.items()) if self.use_knobs else ():
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v > 0:
                feats[f"log2 {k}"] = math.log2(v)
            else:
                seen = self._choices.setdefault(k, [])
                if v not in seen:
                    seen.append(v)
                for c in seen:
                    feats[f"{k}={c}"] = float(v == c)
        feats.update(nest_features(schedule, self.levels, self.memory))
        for n in feats:
            if n not in self.names:
                self.names.append(n)
        return np.array([feats.get(n, 0.0) for n in self.names])

    def _matrix(self, X) -> np.ndarray:
        width = len(self.names)
        return np.array([np.pad(np.asarray(x, float), (0, width - len(x))) for x in X])

    def _prior(self, X) -> np.ndarray:
        """ln of the analytic cycle estimate (the feature is log2)."""
        return X[:, self.names.index("log2 est. cycles")] * math.log(2)

    def fit(self, X, costs) -> "CostModel":
        X = self._matrix(X)
        y = np.log(np.asarray(costs, float)) - self._prior(X)
        self.mean_y = float(y.mean()) if len(y) else 0.0
        if len(y) < 3:
            self.coef = None
            return self
        self.mu, self.sd = X.mean(0), X.std(0)
        self.sd[self.sd == 0] = 1.0
        Z = (X - self.mu) / self.sd
        A = Z.T @ Z + self.alpha * np.eye(Z.shape[1])
        self.coef = np.linalg.solve(A, Z.T @ (y - self.mean_y))
        return self

    def predict(self, X) -> np.ndarray:
        X = self._matrix(X)
        if self.coef is None:
            return np.exp(self.mean_y + self._prior(X))
        w = np.pad(self.coef, (0, X.shape[1] - len(self.coef)))
        mu, sd = np.pad(self.mu, (0, X.shape[1] - len(self.mu))), np.pad(self.sd, (0, X.shape[1] - len(self.sd)),
                                                                          constant_values=1.0)
        return np.exp(self.mean_y + self._prior(X) + ((X - mu) / sd) @ w)


# ---- a GEMM schedule template to tune ---------------------------------------------------------------------
def gemm_template(M: int, N: int, K: int, dtype="float32", mr=(1, 2, 4, 8, 16), nr=(4, 8, 16, 32, 64)):
    """(template, space) for tuning C = A·B: an ``mr``×``nr`` tile of C, ``jfirst`` (column tiles outermost),
    and either ``regs`` False — k split by ``kc`` and moved between the tile's rows and columns, columns
    vectorized — or ``regs`` True: the tile accumulated in registers (cache_write, unrolled rows, vectorized
    columns) and, with ``pack``, B's panel packed into a local buffer (the GEMM recipe's micro-kernel).
    ``mr``/``nr`` list the tile sizes to try (an unrolled mr×nr register block is mr·nr statements of numba
    source: large blocks compile slowly)."""
    from .recipes import gemm_compute
    from .schedule import Schedule
    C = gemm_compute(M, N, K, dtype)

    def template(mr, nr, kc, jfirst, regs, pack):
        s = Schedule(C)
        CL = s.cache_write(C) if regs else None
        io, jo, ii, ji = s.tile("i", "j", mr, nr)
        outer = (jo, io) if jfirst else (io, jo)
        if not regs:
            ko, ki = s.split("k", kc)
            s.reorder(*outer, ko, ii, ki, ji)
            s.vectorize(ji)
            return s
        s.reorder(*outer, ii, ji)
        s.unroll(ii)
        s.vectorize(ji)
        s.compute_at(CL, C, outer[1])
        s.reorder("k", "i", "j", tensor=CL)
        s.unroll("i", tensor=CL)
        s.vectorize("j", tensor=CL)
        if pack:
            BL = s.cache_read("B", [CL])
            s.compute_at(BL, C, outer[1])
        return s
    space = dict(mr=[m for m in mr if m <= M], nr=[n for n in nr if n <= N],
                 kc=[k for k in (4, 16, 64) if k <= K], jfirst=[False, True], regs=[False, True], pack=[False, True])
    return template, space
