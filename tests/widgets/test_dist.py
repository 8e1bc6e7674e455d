"""The dist widgets draw the records aisys.dist produces, and their controls change what is drawn."""
from __future__ import annotations

import numpy as np
import pytest

from aisys import dist
from aisys.dist.pipeline import simulate_pipeline
from widgets import CollectiveAnimator, MemoryStack, TimelineView, TopologyView


def test_collective_animator_shows_the_ring_filling_up():
    a = CollectiveAnimator("allreduce", "ring", p=4)
    assert "ranks' data per chunk: 1 1 1 1 | 1 1 1 1" in a.summary()          # only its own data
    a.slider.value = 3                                                        # after the reduce-scatter
    assert "ranks' data per chunk: 4 3 2 1 | 1 4 3 2 | 2 1 4 3 | 3 2 1 4" in a.summary()
    svg = a.picture.value
    assert svg.count('class="msg"') == 4 and svg.count('class="cell"') == 16
    a.slider.value = 6
    assert "4 4 4 4 | 4 4 4 4 | 4 4 4 4 | 4 4 4 4" in a.summary()
    assert "elements sent so far per rank: [6, 6, 6, 6]" in a.summary()      # 2(p-1)/p·n with n = 4


def test_collective_animator_takes_a_simulation_and_rejects_other_things():
    rep = dist.simulate("allgather", "bruck", topology="dgx_a100", nbytes=8 * 4 * 8)
    a = CollectiveAnimator(rep, start=1)
    assert "simulated" in a.caption.value
    with pytest.raises(TypeError, match="draws a collective name, a Schedule or a SimReport"):
        CollectiveAnimator(42)
    with pytest.raises(ValueError, match="up to 16 ranks"):
        CollectiveAnimator("allreduce", "ring", p=17)


def test_topology_view_switches_topologies_and_colours_busy_links():
    v = TopologyView({"NVLink": dist.Topology.preset("dgx_a100"), "PCIe": dist.Topology.preset("pcie_gen4")},
                     "allreduce", "ring", nbytes=64 << 20)
    nv = v.picture.value
    assert nv.count('class="device"') == 8 and "300 GB/s (2,400 Gbps)" in v.caption.value
    v.picker.value = "PCIe"
    assert v.picture.value != nv and "31.5 GB/s (252 Gbps)" in v.caption.value
    assert "NVLink:" in v.summary() and "PCIe:" in v.summary()


def test_timeline_view_draws_traces_side_by_side_and_sweeps():
    sim = dist.simulate("allreduce", "ring", topology="dgx_a100", nbytes=1 << 20)
    res = dist.run(lambda comm: comm.allreduce(np.ones(8)), nprocs=2, timeout=30, backend="sim")
    v = TimelineView({"simulated": sim, "threads": res})
    assert "simulated: lanes ['rank 0'" in v.summary() and len(v.figure.data) >= 2
    sweep = TimelineView(sweep=("micro-batches", [1, 4, 16], lambda m: simulate_pipeline(4, m, "1f1b")))
    before = sweep.summary()
    sweep.slider.value = 16
    assert sweep.summary() != before and "'forward': 64" in sweep.summary()


def test_memory_stack_follows_the_zero_paper_and_its_slider():
    m = MemoryStack(7.5e9, 64)
    text = m.summary()
    assert "stage 0: 120 GB" in text and "stage 1: 31.4 GB" in text and "stage 2: 16.6 GB" in text
    assert "stage 3: 1.88 GB" in text
    m.slider.value = 8
    assert "stage 3: 15 GB" in m.summary()
