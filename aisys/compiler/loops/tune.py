"""Auto-tuning: search a schedule template's knobs for the fastest (or fewest simulated cycles) variant.

A template is a function ``knobs -> Schedule``; the space maps each knob to its choices. Random search
samples it; simulated annealing walks from the best point so far, changing one knob at a time and
accepting a worse point with probability exp(−Δ/T) as T cools (Kirkpatrick et al., 1983). A trial is
measured by simulated cycles (``CacheSim`` on the nest's address stream: deterministic, seconds) or real
time (median of repeats of the numba kernel, one thread). Every trial goes into the tuning log.
"""
from __future__ import annotations

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

    def summary(self) -> str:
        b = self.best
        return (f"{len(self.trials)} trials ({self.measure}); best {b.cost:.4g} with {b.knobs}; "
                f"first {self.trials[0].cost:.4g}")


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


def search(space: dict, cost, trials: int = 50, seed: int = 0) -> dict:
    """Lab 07.3's reference: simulated annealing over ``space`` ({knob: [choices]}) for at most ``trials``
    evaluations of ``cost(knobs)``; returns the best knobs found (reproducible for a seed)."""
    t = Tuner(lambda **k: k, space, lambda knobs: (cost(knobs), 0), name="cost", seed=seed)
    t.random(min(10, trials), progress=False)
    best = t.log.best.knobs
    t.anneal(trials - min(10, trials), start=best, progress=False) if trials > 10 else None
    return dict(t.log.best.knobs)
