"""The records of memory planning: a ``Buffer`` (one tensor's size and live interval, then its
offset in the arena) and a ``MemoryPlan`` (all buffers placed, with the peak, the lower bound and
a ``validate()`` that proves the placement is safe).

Conventions used everywhere in ``aisys.compiler.memory``:
  * time is the *schedule step*: step ``s`` runs the ``s``-th op of the schedule;
  * a buffer is live on the closed interval ``[start, end]``: it is written at ``start`` and last
    read at ``end``. Two buffers whose intervals share a step are alive together and must not
    share bytes (the one exception is an accepted in-place pair, see below);
  * every buffer occupies ``align_up(size, alignment)`` bytes from its offset, and offsets are
    multiples of the alignment (64 bytes by default: a cache line, the alignment most CPU runtimes
    give tensors);
  * ``lower_bound_bytes`` is the most bytes alive at any one step. No placement can beat it, because
    the buffers alive at that step all need disjoint bytes; ``peak_bytes`` is the arena size a
    placement needs (the highest byte any buffer touches); ``fragmentation = 1 − lower/peak`` is the
    share of the arena that is wasted at the worst step for this placement.

In-place reuse: an elementwise op may write its output over an input that dies at that very step
(``relu(x)`` when ``x`` has no other reader). Such an (input, output) pair shares one offset; for
planning the pair is one block alive from the input's start to the output's end.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, replace

DEFAULT_ALIGNMENT = 64


def align_up(nbytes: int, alignment: int) -> int:
    """``nbytes`` rounded up to a multiple of ``alignment`` (0 stays 0)."""
    return -(-int(nbytes) // alignment) * alignment


def bytes_text(n: int) -> str:
    """'512 B', or '48.0 KiB (49152 B)' when the exact count adds information."""
    return format_bytes(n) if n < 1024 else f"{format_bytes(n)} ({int(n)} B)"


def format_bytes(n: float) -> str:
    """Human-readable bytes with a stable format: '512 B', '3.0 KiB', '1.50 MiB'."""
    n = int(n)
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.1f} KiB"
    if n < 1024 ** 3:
        return f"{n / 1024 ** 2:.2f} MiB"
    return f"{n / 1024 ** 3:.2f} GiB"


@dataclass(frozen=True)
class Buffer:
    """One tensor to place: ``size`` bytes live on schedule steps ``start..end`` (inclusive).

    ``offset`` is None until a planner places it. ``op`` names the producing op (for hover text
    and errors), ``kind`` says what the tensor is: "activation", "output", "input", "param",
    "gradient", or anything a caller finds useful.
    """
    name: str
    size: int
    start: int
    end: int
    offset: int | None = None
    op: str = ""
    kind: str = "activation"

    def __post_init__(self):
        for attr in ("size", "start", "end"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"Buffer {self.name!r}: {attr} must be an integer, got {v!r}")
            object.__setattr__(self, attr, int(v))
        if self.size < 0:
            raise ValueError(f"Buffer {self.name!r}: size must be >= 0 bytes, got {self.size}")
        if self.start < 0 or self.end < self.start:
            raise ValueError(f"Buffer {self.name!r}: live interval [{self.start}, {self.end}] is invalid; "
                             f"need 0 <= start <= end (steps are inclusive)")
        if self.offset is not None:
            if isinstance(self.offset, bool) or not isinstance(self.offset, numbers.Integral) or self.offset < 0:
                raise ValueError(f"Buffer {self.name!r}: offset must be a non-negative integer, got {self.offset!r}")
            object.__setattr__(self, "offset", int(self.offset))

    def lives_with(self, other: "Buffer") -> bool:
        """True when the two live intervals share at least one step."""
        return self.start <= other.end and other.start <= self.end

    def padded(self, alignment: int) -> int:
        return align_up(self.size, alignment)

    def at(self, offset: int) -> "Buffer":
        return replace(self, offset=offset)


class MemoryLimitError(MemoryError):
    """The plan needs more bytes than ``limit_bytes``. Attributes: ``peak``, ``limit``,
    ``lower_bound``, ``step``, ``op``, ``live`` (the buffers alive at the worst step, largest first)."""

    def __init__(self, plan: "MemoryPlan", limit: int):
        self.plan, self.limit = plan, limit
        self.peak, self.lower_bound = plan.peak_bytes, plan.lower_bound_bytes
        self.step = plan.peak_step()
        self.op = plan.step_label(self.step)
        self.live = sorted(plan.live_at(self.step), key=lambda b: (-b.size, b.name))
        top = "\n".join(f"    {b.name:<16} {format_bytes(b.size):>10}  ({b.kind}{', from ' + b.op if b.op else ''})"
                        for b in self.live[:8])
        more = f"\n    … and {len(self.live) - 8} more" if len(self.live) > 8 else ""
        if self.lower_bound > limit:
            why = (f"even a perfect placement needs {format_bytes(self.lower_bound)} "
                   f"(the bytes alive at step {self.step}), so no planner can fit")
            fix = ("recompute activations instead of keeping them (activation checkpointing), "
                   "use a smaller batch, or a schedule that frees tensors earlier")
        else:
            why = (f"the lower bound {format_bytes(self.lower_bound)} would fit, the placement of "
                   f"planner {plan.planner!r} wastes the rest")
            fix = ("try planner='greedy_by_size' or in-place reuse; otherwise activation checkpointing "
                   "or a smaller batch")
        super().__init__(
            f"memory plan needs {format_bytes(self.peak)} ({self.peak} B) but the limit is "
            f"{format_bytes(limit)} ({limit} B): {why}.\n"
            f"  busiest step {self.step} ({self.op}) has {len(self.live)} live buffers, largest first:\n"
            f"{top}{more}\n  fix: {fix}.")


class MemoryPlan:
    """Buffers with their offsets, and the figures that judge the placement."""

    def __init__(self, buffers, planner: str, alignment: int = DEFAULT_ALIGNMENT,
                 inplace: tuple = (), steps: tuple | None = None, schedule: tuple | None = None,
                 note: str = ""):
        self.buffers: tuple[Buffer, ...] = tuple(buffers)
        self.planner = planner
        self.alignment = alignment
        self.inplace: tuple[tuple[str, str], ...] = tuple(inplace)   # (input buffer, output buffer) pairs
        n = 1 + max((b.end for b in self.buffers), default=-1)
        self.steps: tuple[str, ...] = tuple(steps) if steps is not None else tuple(f"step {i}" for i in range(n))
        self.schedule = tuple(schedule) if schedule is not None else None   # node ids, for graph plans
        self.note = note
        self._by_name = {b.name: b for b in self.buffers}
        if len(self._by_name) != len(self.buffers):
            dup = sorted({b.name for b in self.buffers if sum(x.name == b.name for x in self.buffers) > 1})
            raise ValueError(f"buffer names must be unique; repeated: {', '.join(dup)}")
        unplaced = [b.name for b in self.buffers if b.offset is None]
        if unplaced:
            raise ValueError(f"MemoryPlan needs every buffer placed; no offset for: {', '.join(unplaced[:5])}")

    # ---- figures -------------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def peak_bytes(self) -> int:
        """Arena size: the highest byte any buffer occupies (offset + padded size)."""
        return max((b.offset + b.padded(self.alignment) for b in self.buffers), default=0)

    def live_bytes(self) -> list[int]:
        """Bytes alive at each step (padded sizes; an in-place pair counts once)."""
        return live_bytes_profile(self.buffers, self.num_steps, self.alignment, self.inplace)

    @property
    def lower_bound_bytes(self) -> int:
        """Most bytes alive at one step: no placement of these lifetimes can use less."""
        return max(self.live_bytes(), default=0)

    @property
    def fragmentation(self) -> float:
        """1 − lower_bound / peak: the share of the arena that is wasted at the worst step."""
        peak = self.peak_bytes
        return 0.0 if peak == 0 else 1.0 - self.lower_bound_bytes / peak

    @property
    def total_bytes(self) -> int:
        """Sum of padded sizes: what the arena would need with no reuse at all (the naive plan)."""
        return sum(b.padded(self.alignment) for b in self.buffers)

    def peak_step(self) -> int:
        """The first step with the most live bytes."""
        prof = self.live_bytes()
        return prof.index(max(prof)) if prof else 0

    def step_label(self, step: int) -> str:
        return self.steps[step] if 0 <= step < len(self.steps) else f"step {step}"

    def live_at(self, step: int) -> list[Buffer]:
        return [b for b in self.buffers if b.start <= step <= b.end]

    def buffer(self, name: str) -> Buffer:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no buffer named {name!r} in this plan; buffers: "
                           f"{', '.join(list(self._by_name)[:10])}{' …' if len(self._by_name) > 10 else ''}") from None

    def __iter__(self):
        return iter(self.buffers)

    def __len__(self) -> int:
        return len(self.buffers)

    # ---- proof --------------------------------------------------------------------------------
    def validate(self) -> "MemoryPlan":
        """Raise ValueError unless the placement is safe; returns the plan so calls chain.

        Checks: offsets are multiples of the alignment, and no two buffers that are alive at the same
        step share a byte — except an in-place pair (same offset, output no larger than the input,
        input dying exactly where the output is born). Sweeps the steps, so it costs
        O(n log n + overlaps) instead of comparing all pairs.
        """
        a = self.alignment
        for b in self.buffers:
            if b.offset % a:
                raise ValueError(f"buffer {b.name!r} sits at offset {b.offset}, not a multiple of the "
                                 f"alignment {a}")
        shared = set()
        for src, dst in self.inplace:
            x, y = self.buffer(src), self.buffer(dst)
            if x.offset != y.offset or y.padded(a) > x.padded(a) or x.end != y.start:
                raise ValueError(f"in-place pair ({src!r} -> {dst!r}) is not valid: it needs the same offset "
                                 f"({x.offset} vs {y.offset}), an output no larger than the input "
                                 f"({y.size} vs {x.size} B) and the input to die where the output is born "
                                 f"(input ends at step {x.end}, output starts at step {y.start})")
            shared.add((src, dst))
            shared.add((dst, src))
        order = sorted(self.buffers, key=lambda b: (b.start, b.name))
        active: list[Buffer] = []
        for b in order:
            active = [x for x in active if x.end >= b.start]
            lo, hi = b.offset, b.offset + b.padded(a)
            for x in active:
                xlo, xhi = x.offset, x.offset + x.padded(a)
                if lo < xhi and xlo < hi and hi > lo and xhi > xlo and (x.name, b.name) not in shared:
                    raise ValueError(
                        f"planner {self.planner!r} placed {x.name!r} (steps {x.start}..{x.end}, bytes "
                        f"{xlo}..{xhi}) and {b.name!r} (steps {b.start}..{b.end}, bytes {lo}..{hi}) in "
                        f"overlapping bytes while both are alive at step {max(x.start, b.start)}")
            active.append(b)
        return self

    # ---- text ---------------------------------------------------------------------------------
    def summary(self, max_rows: int = 12) -> str:
        """Deterministic text: the figures, then the largest buffers with their intervals and offsets."""
        peak, lb = self.peak_bytes, self.lower_bound_bytes
        at = self.peak_step()
        where = f"{at}: {self.step_label(at)}" if self.step_label(at) != f"step {at}" else f"{at}"
        lines = [f"MemoryPlan ({self.planner}, {len(self.buffers)} buffers, {self.num_steps} steps, "
                 f"alignment {self.alignment} B{', ' + str(len(self.inplace)) + ' in-place' if self.inplace else ''})",
                 f"  peak        {format_bytes(peak):>10}{_exact(peak)}",
                 f"  lower bound {format_bytes(lb):>10}  (at step {where}){_exact(lb)}",
                 f"  no reuse    {format_bytes(self.total_bytes):>10}{_exact(self.total_bytes)}",
                 f"  fragmentation {self.fragmentation:.1%}, peak / lower bound "
                 f"{(peak / lb if lb else 1.0):.3f}"]
        if self.note:
            lines.append(f"  {self.note}")
        if self.buffers and max_rows:
            width = max(6, max(len(b.name) for b in self.buffers))
            lines.append(f"  {'buffer':<{width}}  {'bytes':>9}  {'steps':>9}  {'offset':>9}")
            rows = sorted(self.buffers, key=lambda b: (-b.size, b.start, b.name))
            for b in rows[:max_rows]:
                lines.append(f"  {b.name:<{width}}  {b.size:>9}  {f'{b.start}..{b.end}':>9}  {b.offset:>9}")
            if len(rows) > max_rows:
                lines.append(f"  … {len(rows) - max_rows} smaller buffers")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<MemoryPlan {self.planner}: {len(self.buffers)} buffers, peak {self.peak_bytes} B, "
                f"lower bound {self.lower_bound_bytes} B>")


def _exact(n: int) -> str:
    return f"  = {n} B" if n >= 1024 else ""


def live_bytes_profile(buffers, num_steps: int | None = None, alignment: int = 1, inplace=()) -> list[int]:
    """Bytes alive at each step, by a difference array (O(n + steps)).

    An in-place pair (x -> y) is counted once at the step where x dies and y is born.
    """
    buffers = list(buffers)
    n = num_steps if num_steps is not None else 1 + max((b.end for b in buffers), default=-1)
    diff = [0] * (n + 1)
    for b in buffers:
        s = b.padded(alignment)
        diff[b.start] += s
        diff[min(b.end, n - 1) + 1] -= s
    if inplace:
        by = {b.name: b for b in buffers}
        for src, dst in inplace:
            x, y = by[src], by[dst]
            diff[x.end] -= min(x.padded(alignment), y.padded(alignment))
            diff[x.end + 1] += min(x.padded(alignment), y.padded(alignment))
    out, acc = [], 0
    for i in range(n):
        acc += diff[i]
        out.append(acc)
    return out
