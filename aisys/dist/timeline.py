"""TaskGraph: timed tasks on streams with dependencies — the model behind simulated training steps.

A *stream* (lane) runs its tasks one after another in the order they were added, like a CUDA stream: a
rank's compute stream runs forward and backward pieces, its communication stream runs all-reduces. A task
starts when its stream is free and every task it depends on has ended. That is enough to see data-parallel
overlap (a bucket's all-reduce on the comm stream waits for the backward piece that produced it, while the
compute stream moves on) and pipeline bubbles (stage s waits for stage s−1's forward).

``simulate()`` returns a :class:`Timeline` with every task's start and end, the makespan, per-stream busy
time, and a Perfetto ``Trace``. A cycle (a stream waiting for a task that waits for it) is reported with
the tasks and streams involved.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..framework.events import Trace

__all__ = ["TaskGraph", "Timeline", "Task"]


@dataclass
class Task:
    id: int
    name: str
    lane: str
    duration: float
    deps: tuple
    kind: str = "compute"
    args: dict = field(default_factory=dict)


class TaskGraph:
    """Tasks on streams; ``add(name, lane, duration, deps=(), kind=...)`` returns the task's id."""

    def __init__(self, name: str = "task graph"):
        self.name = name
        self.tasks: list[Task] = []
        self._lane_order: dict[str, list[int]] = {}

    def add(self, name: str, lane: str, duration: float, deps=(), kind: str = "compute", **args) -> int:
        if not isinstance(duration, (int, float, np.floating)) or not np.isfinite(duration) or duration < 0:
            raise ValueError(f"TaskGraph.add({name!r}): duration must be a finite number of seconds >= 0, "
                             f"got {duration!r}")
        deps = tuple(int(d) for d in deps if d is not None)
        tid = len(self.tasks)
        for d in deps:
            if d < 0:
                raise ValueError(f"TaskGraph.add({name!r}): dependency {d} is not a task id")
        self.tasks.append(Task(tid, str(name), str(lane), float(duration), deps, kind, dict(args)))
        self._lane_order.setdefault(str(lane), []).append(tid)
        return tid

    def depend(self, task: int, on: int) -> None:
        """Add a dependency after the fact (for tasks added before the one they wait for)."""
        t = self.tasks[task]
        t.deps = t.deps + (int(on),)

    @property
    def lanes(self) -> list[str]:
        return list(self._lane_order)

    def simulate(self) -> "Timeline":
        n = len(self.tasks)
        for t in self.tasks:
            for d in t.deps:
                if not 0 <= d < n:
                    raise ValueError(f"task {t.name!r} on {t.lane!r} depends on task id {d}, which does not exist")
        prev = {}
        for order in self._lane_order.values():
            for a, b in zip(order[:-1], order[1:]):
                prev[b] = a
        indeg = np.zeros(n, np.int64)
        users: list[list[int]] = [[] for _ in range(n)]
        for t in self.tasks:
            preds = set(t.deps)
            if t.id in prev:
                preds.add(prev[t.id])
            indeg[t.id] = len(preds)
            for p_ in preds:
                users[p_].append(t.id)
        start = np.zeros(n)
        end = np.zeros(n)
        ready_at = np.zeros(n)
        queue = [i for i in range(n) if indeg[i] == 0]
        done = 0
        while queue:
            i = queue.pop()
            start[i] = ready_at[i]
            end[i] = start[i] + self.tasks[i].duration
            done += 1
            for u in users[i]:
                ready_at[u] = max(ready_at[u], end[i])
                indeg[u] -= 1
                if indeg[u] == 0:
                    queue.append(u)
        if done < n:
            stuck = [t for t in self.tasks if indeg[t.id] > 0]
            heads = {}
            for t in stuck:
                heads.setdefault(t.lane, t)
            stuck_ids = {s.id for s in stuck}
            lines = [f"{lane}: {t.name!r} waits for " + (", ".join(
                f"{self.tasks[d].name!r} ({self.tasks[d].lane})" for d in t.deps if d in stuck_ids)
                or "the task before it on its stream") for lane, t in heads.items()]
            raise ValueError(f"{self.name}: the tasks wait for each other in a cycle (deadlock), {len(stuck)} tasks "
                             f"never start:\n  " + "\n  ".join(lines))
        return Timeline(self, start, end)


class Timeline:
    """The simulated run of a :class:`TaskGraph`: ``start``/``end`` per task (s), ``makespan``, ``busy(lane)``,
    ``idle_fraction(lanes)`` and ``trace``."""

    def __init__(self, graph: TaskGraph, start, end):
        self.graph = graph
        self.start = start
        self.end = end

    @property
    def makespan(self) -> float:
        return float(self.end.max()) if self.end.size else 0.0

    def busy(self, lane: str) -> float:
        ids = self.graph._lane_order.get(lane, [])
        return float(sum(self.end[i] - self.start[i] for i in ids))

    def idle_fraction(self, lanes=None) -> float:
        """Share of lanes × makespan spent idle (the pipeline bubble when lanes are the stages' compute)."""
        lanes = self.graph.lanes if lanes is None else list(lanes)
        total = self.makespan * len(lanes)
        return 1.0 - sum(self.busy(x) for x in lanes) / total if total else 0.0

    def task_end(self, name: str) -> float:
        for t in self.graph.tasks:
            if t.name == name:
                return float(self.end[t.id])
        raise KeyError(f"no task named {name!r}")

    @property
    def trace(self) -> Trace:
        tr = Trace(self.graph.name, unit="us")
        for t in self.graph.tasks:
            if t.duration > 0:
                tr.add_event(t.lane, t.name, self.start[t.id] * 1e6, self.end[t.id] * 1e6, kind=t.kind, **t.args)
        return tr

    def summary(self) -> str:
        lines = [f"{self.graph.name}: {len(self.graph.tasks)} tasks on {len(self.graph.lanes)} streams, "
                 f"makespan {self.makespan * 1e3:.4g} ms"]
        for lane in self.graph.lanes:
            b = self.busy(lane)
            lines.append(f"  {lane:<18} busy {b * 1e3:9.4g} ms ({100 * b / self.makespan if self.makespan else 0:5.1f}%)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
