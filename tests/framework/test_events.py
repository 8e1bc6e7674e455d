"""Trace: recording, busy time, and a Chrome trace-event JSON that Perfetto can open."""
import json
import math

import pytest

from aisys.framework.events import Trace


def _assert_valid_chrome_trace(obj):
    """The checks a trace viewer makes on the JSON object form (Trace Event Format, Google 2016)."""
    text = json.dumps(obj, allow_nan=False)          # strict JSON: no NaN/Infinity
    obj = json.loads(text)
    assert isinstance(obj, dict) and isinstance(obj["traceEvents"], list)
    assert obj.get("displayTimeUnit", "ms") in ("ms", "ns")
    for ev in obj["traceEvents"]:
        assert isinstance(ev["name"], str) and ev["ph"] in ("X", "C", "M")
        assert isinstance(ev["pid"], int)
        if ev["ph"] == "X":
            assert isinstance(ev["tid"], int)
            assert isinstance(ev["ts"], (int, float)) and isinstance(ev["dur"], (int, float))
            assert ev["dur"] >= 0 and math.isfinite(ev["ts"])
        elif ev["ph"] == "C":
            assert isinstance(ev["ts"], (int, float))
            assert ev["args"] and all(isinstance(v, (int, float)) for v in ev["args"].values())
        else:
            assert ev["name"] in ("process_name", "thread_name", "thread_sort_index")
    return obj


def _runtime_trace():
    tr = Trace("runtime")
    tr.add_event("cpu", "matmul", 0, 10, flops=128)
    tr.add_event("cpu", "relu", 10, 12)
    tr.add_event("dma", "copy x", 2, 6, bytes=64)
    tr.add_counter("live bytes", 0, 64)
    tr.add_counter("live bytes", 10, 192)
    return tr


def test_chrome_export_is_valid_and_names_each_lane():
    obj = _assert_valid_chrome_trace(_runtime_trace().to_chrome())
    evs = obj["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in evs if e["name"] == "thread_name"}
    assert sorted(threads.values()) == ["cpu", "dma"]
    xs = [e for e in evs if e["ph"] == "X"]
    assert [(threads[e["tid"]], e["name"], e["ts"], e["dur"]) for e in xs] == [
        ("cpu", "matmul", 0, 10), ("cpu", "relu", 10, 2), ("dma", "copy x", 2, 4)]
    assert xs[0]["args"]["flops"] == 128
    cs = [e for e in evs if e["ph"] == "C"]
    assert [(e["ts"], e["args"]["value"]) for e in cs] == [(0, 64), (10, 192)]


def test_lanes_busy_time_and_summary_are_deterministic():
    tr = _runtime_trace()
    tr.add_event("cpu", "nested kernel", 1, 3)       # inside matmul: counted once
    assert tr.lanes == ["cpu", "dma"]
    assert tr.busy_time("cpu") == 12 and tr.busy_time("dma") == 4
    assert tr.span == (0, 12)
    s = tr.summary()
    assert s == _runtime_trace_with_nested().summary()
    assert "4 events on 2 lanes, span 0..12 us" in s
    assert "cpu" in s and "100.0%" in s and "33.3%" in s
    assert "counter live bytes: 2 samples, min 64, max 192" in s


def _runtime_trace_with_nested():
    tr = _runtime_trace()
    tr.add_event("cpu", "nested kernel", 1, 3)
    return tr


def test_cycles_convert_with_the_clock():
    tr = Trace("chip", unit="cycles", clock_hz=1e9)      # 1 GHz: 1000 cycles = 1 us
    tr.add_event("systolic", "gemm", 0, 3000, macs=4096)
    tr.add_event("dma", "load A", 500, 1500)
    obj = _assert_valid_chrome_trace(tr.to_chrome())
    xs = {e["name"]: e for e in obj["traceEvents"] if e["ph"] == "X"}
    assert xs["gemm"]["ts"] == 0 and xs["gemm"]["dur"] == pytest.approx(3.0)
    assert xs["load A"]["ts"] == pytest.approx(0.5)
    assert xs["gemm"]["args"]["dur_cycles"] == 3000 and xs["gemm"]["args"]["macs"] == 4096
    assert obj["otherData"] == {"unit": "cycles", "clock_hz": 1e9}
    assert "clock 1000000000 Hz" in tr.summary()


def test_save_and_read_back(tmp_path):
    tr = _runtime_trace()
    path = tr.save(tmp_path / "run.json")
    obj = _assert_valid_chrome_trace(json.loads(open(path).read()))
    back = Trace.from_chrome(obj)
    assert back.name == "runtime" and back.lanes == tr.lanes
    assert [(e.lane, e.name, e.start, e.end) for e in back.events] == \
        [(e.lane, e.name, e.start, e.end) for e in tr.events]
    assert back.counter_series("live bytes") == ([0, 10], [64, 192])


def test_counter_with_several_series_and_numpy_args():
    np = pytest.importorskip("numpy")
    tr = Trace("mem", unit="steps")
    tr.add_event("cpu", "add", 0, 1, nbytes=np.int64(256), shape=(2, 32))
    tr.add_counter("memory", 0, {"live": 256, "arena": 512})
    obj = _assert_valid_chrome_trace(tr.to_chrome())
    x = next(e for e in obj["traceEvents"] if e["ph"] == "X")
    assert x["args"]["nbytes"] == 256 and x["args"]["shape"] == [2, 32]
    assert "counter memory.arena: 1 samples, min 512, max 512" in tr.summary()


@pytest.mark.parametrize("call, msg", [
    (lambda t: t.add_event("cpu", "x", 5, 1), "end 1 is before start 5"),
    (lambda t: t.add_event("", "x", 0, 1), "lane must be a non-empty string"),
    (lambda t: t.add_event("cpu", "x", float("nan"), 1), "start must be a finite number"),
    (lambda t: t.add_counter("live", 0, "lots"), "must be a finite number"),
    (lambda t: t.add_counter("live", 0, {}), "at least one series"),
])
def test_bad_records_raise_and_leave_the_trace_unchanged(call, msg):
    tr = _runtime_trace()
    before = (list(tr.events), list(tr.counters), tr.lanes)
    with pytest.raises(ValueError, match=msg):
        call(tr)
    assert (tr.events, tr.counters, tr.lanes) == before


def test_bad_units():
    with pytest.raises(ValueError, match="needs the clock"):
        Trace(unit="cycles")
    with pytest.raises(ValueError, match="not known"):
        Trace(unit="fortnights")
    with pytest.raises(ValueError, match="only applies"):
        Trace(unit="us", clock_hz=1e9)
