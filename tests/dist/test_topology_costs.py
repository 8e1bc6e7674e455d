"""Topologies (cited presets, routing, units in GB/s with Gbps) and the closed-form cost models."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from aisys import dist
from aisys.dist import LINK_TYPES, Topology
from aisys.dist.units import format_bandwidth, from_gbps, gbps


def test_units_always_show_gb_per_s_with_gbps_beside():
    assert format_bandwidth(25e9) == "25 GB/s (200 Gbps)"              # InfiniBand HDR
    assert format_bandwidth(300e9) == "300 GB/s (2,400 Gbps)"          # NVLink 3, one direction
    assert gbps(from_gbps(656)) == pytest.approx(656)                  # TPU v3 ICI is quoted in Gbit/s
    assert LINK_TYPES["tpu_v3_ici"].bandwidth == 82e9


@pytest.mark.parametrize("name", Topology.presets())
def test_presets_cite_their_figures(name):
    topo = Topology.preset(name)
    text = topo.summary()
    assert "GB/s (" in text and "Gbps)" in text
    for t in topo.link_types:
        assert t.source and any(w in t.source for w in ("whitepaper", "Jouppi", "PCI-SIG", "IEEE")), t.source
        assert "tuning.cc" in t.source or "assumption" in t.source     # where α comes from


def test_routes_follow_the_hardware():
    dgx = Topology.preset("dgx_a100")
    assert [dgx.link_name(l) for l in dgx.route(0, 5)] == ["rank 0 -> NVSwitch", "NVSwitch -> rank 5"]
    two = Topology.preset("dgx_a100_x2_ib")
    assert [two.link_name(l) for l in two.route(1, 3)] == ["rank 1 -> node 0 switch", "node 0 switch -> rank 3"]
    assert [two.link_name(l) for l in two.route(1, 9)] == ["rank 1 -> network switch", "network switch -> rank 9"]
    assert two.nodes == [list(range(8)), list(range(8, 16))]
    pcie = Topology.preset("pcie_gen4")
    assert len(pcie.route(0, 1)) == 2 and len(pcie.route(0, 5)) == 4      # across the CPU root complex
    torus = Topology.preset("tpu_v3_4x4")
    assert len(torus.route(0, 15)) == 2                                    # wrap-around both ways
    ring = Topology.ring(6, bandwidth=1e9)
    assert [ring.link_name(l) for l in ring.route(0, 4)] == ["rank 0 -> rank 5", "rank 5 -> rank 4"]
    mesh = Topology.fully_connected(5, bandwidth=1e9)
    assert all(mesh.link_name(mesh.route(a, b)[0]) == f"rank {a} -> rank {b}"
               for a in range(5) for b in range(5) if a != b)


def test_link_alpha_beta_of_a_path():
    a, bw = dist.link_alpha_beta(Topology.preset("dgx_a100_x2_ib"), 0, 8)
    assert a == pytest.approx(2 * 4.8e-6) and bw == 25e9


def test_topology_errors():
    with pytest.raises(ValueError, match=r"bandwidth must be > 0 bytes/s.*25e9"):
        Topology.fully_connected(4, bandwidth=0)
    with pytest.raises(ValueError, match="give bandwidth="):
        Topology.ring(4)
    with pytest.raises(ValueError, match="unknown topology preset 'dgx'; choose one of"):
        Topology.preset("dgx")


def test_crossover_between_ring_and_tree():
    p, alpha, bw = 8, 3.4e-6, 300e9
    n = dist.crossover("ring", "tree", p, alpha, bw)
    # closed form: 2(p-1)α + 2(p-1)/p·n/B = 2·log2(p)·(α + n/B)
    assert n == pytest.approx((2 * (p - 1) - 6) * alpha / ((6 - 2 * (p - 1) / p) / bw))
    small, large = n / 4, n * 4
    assert dist.collective_time("allreduce", "tree", p, small, alpha, bw) < \
        dist.collective_time("allreduce", "ring", p, small, alpha, bw)
    assert dist.collective_time("allreduce", "ring", p, large, alpha, bw) < \
        dist.collective_time("allreduce", "tree", p, large, alpha, bw)
    assert dist.crossover("ring", "direct", 4, 1e-6, 1e9) is None      # equal bandwidth terms: never cross


def test_fit_alpha_beta_recovers_the_line():
    sizes = np.array([1, 2, 4, 8, 16]) * (1 << 20)
    alpha, bw = dist.fit_alpha_beta(sizes, 7e-6 + sizes / 12e9)
    assert alpha == pytest.approx(7e-6) and bw == pytest.approx(12e9)
    with pytest.raises(ValueError, match="at least two measurements"):
        dist.fit_alpha_beta([1], [1.0])


def test_bus_factors_of_nccl_tests():
    assert dist.bus_factor("allreduce", 8) == 2 * 7 / 8
    assert dist.bus_factor("allgather", 4) == 3 / 4 and dist.bus_factor("broadcast", 4) == 1.0
    with pytest.raises(ValueError, match="no closed form for allreduce/double_binary_tree"):
        dist.collective_time("allreduce", "double_binary_tree", 8, 1e6, 1e-6, 1e9)


def test_import_aisys_never_loads_mpi4py():
    code = ("import sys, aisys, aisys.dist, aisys.dist.launch, aisys.dist.comm; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'; "
            "assert 'cloudpickle' not in sys.modules, 'cloudpickle imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
