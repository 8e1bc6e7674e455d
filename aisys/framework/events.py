"""Trace: timed events per unit ("lane"), the record every timeline in aisys is drawn from.

The runtime records one event per executed op, the simulated chip one per busy interval of each
unit (systolic array, vector unit, DMA). A trace keeps times in the unit its producer thinks in —
microseconds for the runtime, cycles for the chip (with the clock that converts them), logical
steps for a memory plan — and converts only when it is exported.

``to_chrome()`` writes the Chrome trace-event format (the JSON object form with ``traceEvents``),
so ``trace.save("run.json")`` opens directly in Perfetto (ui.perfetto.dev) or chrome://tracing:
  * complete events, ``ph: "X"``, with ``ts`` and ``dur`` in microseconds;
  * counter samples, ``ph: "C"``, drawn as a step chart (e.g. live bytes);
  * metadata, ``ph: "M"``, naming the process and one thread per lane (in first-use order).
Format facts follow the public "Trace Event Format" document (Google, 2016).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

# Microseconds per unit; "cycles" is filled in from the clock, "steps" are drawn one per microsecond.
_US_PER_UNIT = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3, "steps": 1.0}
UNITS = tuple(_US_PER_UNIT) + ("cycles",)


@dataclass(frozen=True)
class TraceEvent:
    """One busy interval of one lane: [start, end) in the trace's unit, with free-form args."""
    lane: str
    name: str
    start: float
    end: float
    args: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class CounterSample:
    """The value(s) of a counter from time ``t`` on; ``values`` maps series name -> number."""
    name: str
    t: float
    values: dict


def _check_time(what: str, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {what} must be a finite number, got {value!r}")
    return value


def _fmt(x: float) -> str:
    """Stable short text for a number (integers print without a decimal point)."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6g}"


class Trace:
    """Timed events per lane plus counter samples; export with :meth:`to_chrome` / :meth:`save`.

    ``unit`` is one of "s", "ms", "us", "ns", "steps" or "cycles"; "cycles" needs ``clock_hz``
    (cycles / clock_hz seconds) so the exported timeline shows real time.
    """

    def __init__(self, name: str = "aisys", unit: str = "us", clock_hz: float | None = None):
        if unit not in UNITS:
            raise ValueError(f"Trace unit {unit!r} is not known; use one of {', '.join(UNITS)}")
        if unit == "cycles":
            if clock_hz is None or isinstance(clock_hz, bool) or not isinstance(clock_hz, (int, float)) \
                    or not math.isfinite(clock_hz) or clock_hz <= 0:
                raise ValueError(f"Trace(unit='cycles') needs the clock to convert cycles to time: "
                                 f"pass clock_hz=<positive Hz>, e.g. clock_hz=1e9 for 1 GHz (got {clock_hz!r})")
        elif clock_hz is not None:
            raise ValueError(f"clock_hz only applies to unit='cycles' (this trace's unit is {unit!r})")
        self.name = str(name)
        self.unit = unit
        self.clock_hz = clock_hz
        self.events: list[TraceEvent] = []
        self.counters: list[CounterSample] = []
        self._lanes: dict[str, int] = {}

    # ---- recording --------------------------------------------------------------------------
    def add_event(self, lane: str, name: str, start: float, end: float, **args) -> TraceEvent:
        """Record that ``lane`` was busy with ``name`` from ``start`` to ``end`` (trace units)."""
        where = f"Trace.add_event(lane={lane!r}, name={name!r})"
        if not isinstance(lane, str) or not lane:
            raise ValueError(f"{where}: lane must be a non-empty string naming the unit, e.g. 'cpu' or 'dma'")
        _check_time("start", start, where)
        _check_time("end", end, where)
        if end < start:
            raise ValueError(f"{where}: end {end} is before start {start}; events need start <= end "
                             f"(in {self.unit})")
        ev = TraceEvent(lane, str(name), start, end, dict(args))
        self._lanes.setdefault(lane, len(self._lanes))
        self.events.append(ev)
        return ev

    def add_counter(self, name: str, t: float, value) -> CounterSample:
        """Record a counter sample: ``value`` is a number, or a dict of series name -> number."""
        where = f"Trace.add_counter(name={name!r})"
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: counter name must be a non-empty string, e.g. 'live bytes'")
        _check_time("t", t, where)
        values = dict(value) if isinstance(value, dict) else {"value": value}
        if not values:
            raise ValueError(f"{where}: at least one series value is needed")
        for k, v in values.items():
            _check_time(f"value of series {k!r}", v, where)
        sample = CounterSample(name, t, values)
        self.counters.append(sample)
        return sample

    # ---- reading ----------------------------------------------------------------------------
    @property
    def lanes(self) -> list[str]:
        """Lane names in the order they were first used."""
        return list(self._lanes)

    def events_in(self, lane: str) -> list[TraceEvent]:
        return [e for e in self.events if e.lane == lane]

    def counter_names(self) -> list[str]:
        return list(dict.fromkeys(c.name for c in self.counters))

    def counter_series(self, name: str, series: str = "value") -> tuple[list[float], list[float]]:
        """(times, values) of one counter series, in recording order."""
        pts = [(c.t, c.values[series]) for c in self.counters if c.name == name and series in c.values]
        return [p[0] for p in pts], [p[1] for p in pts]

    @property
    def span(self) -> tuple[float, float]:
        """(first start, last end) over events and counter samples; (0, 0) when empty."""
        times = [e.start for e in self.events] + [e.end for e in self.events] + [c.t for c in self.counters]
        return (min(times), max(times)) if times else (0, 0)

    def busy_time(self, lane: str) -> float:
        """Time ``lane`` was busy: the length of the union of its events (nested ones count once)."""
        spans = sorted((e.start, e.end) for e in self.events if e.lane == lane)
        total, cur_s, cur_e = 0.0, None, None
        for s, e in spans:
            if cur_e is None or s > cur_e:
                if cur_e is not None:
                    total += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None:
            total += cur_e - cur_s
        return total

    def to_us(self, t: float) -> float:
        """A time in this trace's unit, in microseconds (the Chrome format's unit)."""
        if self.unit == "cycles":
            return t * 1e6 / self.clock_hz
        return t * _US_PER_UNIT[self.unit]

    # ---- export -----------------------------------------------------------------------------
    def to_chrome(self) -> dict:
        """The trace as a Chrome trace-event JSON object (open it in Perfetto)."""
        pid = 1
        out: list[dict] = [
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": self.name}},
        ]
        for lane, idx in self._lanes.items():
            tid = idx + 1
            out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": lane}})
            out.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                        "args": {"sort_index": idx}})
        for e in self.events:
            args = {k: _jsonable(v) for k, v in e.args.items()}
            if self.unit != "us":   # keep the producer's own numbers next to the converted ones
                args.setdefault(f"start_{self.unit}", _jsonable(e.start))
                args.setdefault(f"dur_{self.unit}", _jsonable(e.duration))
            out.append({"name": e.name, "cat": e.lane, "ph": "X", "ts": self.to_us(e.start),
                        "dur": self.to_us(e.end) - self.to_us(e.start), "pid": pid,
                        "tid": self._lanes[e.lane] + 1, "args": args})
        for c in self.counters:
            out.append({"name": c.name, "ph": "C", "ts": self.to_us(c.t), "pid": pid,
                        "args": {k: _jsonable(v) for k, v in c.values.items()}})
        other = {"unit": self.unit}
        if self.clock_hz is not None:
            other["clock_hz"] = self.clock_hz
        return {"traceEvents": out, "displayTimeUnit": "ns" if self.unit in ("ns", "cycles") else "ms",
                "otherData": other}

    def save(self, path: str | os.PathLike) -> str:
        """Write the Chrome trace JSON to ``path`` (conventionally ``*.json``); returns the path."""
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_chrome(), f, indent=None, separators=(",", ":"))
        return path

    @classmethod
    def from_chrome(cls, data: dict, name: str | None = None) -> "Trace":
        """Read back complete and counter events from a Chrome trace object (times in us)."""
        if not isinstance(data, dict) or "traceEvents" not in data:
            raise ValueError("from_chrome expects the JSON object form: a dict with a 'traceEvents' list")
        evs = data["traceEvents"]
        names = {e.get("tid"): e["args"]["name"] for e in evs
                 if e.get("ph") == "M" and e.get("name") == "thread_name"}
        proc = next((e["args"]["name"] for e in evs if e.get("ph") == "M" and e.get("name") == "process_name"),
                    "aisys")
        tr = cls(name or proc, unit="us")
        for e in evs:
            if e.get("ph") == "X":
                lane = names.get(e.get("tid"), str(e.get("tid")))
                tr.add_event(lane, e["name"], e["ts"], e["ts"] + e.get("dur", 0), **e.get("args", {}))
            elif e.get("ph") == "C":
                tr.add_counter(e["name"], e["ts"], dict(e.get("args", {})))
        return tr

    # ---- text -------------------------------------------------------------------------------
    def summary(self) -> str:
        """Deterministic text: per lane its event count and busy time; per counter its range."""
        t0, t1 = self.span
        lines = [f"Trace {self.name!r}: {len(self.events)} events on {len(self._lanes)} lanes, "
                 f"span {_fmt(t0)}..{_fmt(t1)} {self.unit}"
                 + (f" (clock {_fmt(self.clock_hz)} Hz)" if self.clock_hz else "")]
        if self._lanes:
            width = max(4, max(len(x) for x in self._lanes))
            lines.append(f"  {'lane':<{width}}  {'events':>6}  {'busy':>12}  {'busy %':>7}")
            total = (t1 - t0) or 0
            for lane in self._lanes:
                busy = self.busy_time(lane)
                pct = f"{100 * busy / total:.1f}%" if total else "-"
                lines.append(f"  {lane:<{width}}  {len(self.events_in(lane)):>6}  "
                             f"{_fmt(busy) + ' ' + self.unit:>12}  {pct:>7}")
        for name in self.counter_names():
            samples = [c for c in self.counters if c.name == name]
            for series in dict.fromkeys(k for c in samples for k in c.values):
                vals = [c.values[series] for c in samples if series in c.values]
                label = name if series == "value" else f"{name}.{series}"
                lines.append(f"  counter {label}: {len(vals)} samples, min {_fmt(min(vals))}, "
                             f"max {_fmt(max(vals))}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _jsonable(v):
    """Numbers, strings, lists and dicts pass through; numpy scalars become Python ones; else str()."""
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return _jsonable(v.item())
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)
