"""The cluster model, the α-β cost of a placement, and the placement rules."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from aisys import cluster as cl
from aisys.cluster import GPU_TYPES, LINKS, MODELS, Cluster, Node
from aisys.cluster.cost import compute_time, EFFICIENCY


def test_presets_read_like_their_datasheets():
    c = Cluster.preset("two_racks_v100_a100")
    assert c.num_gpus == 64 and c.racks == ("r0", "r1") and list(c.gpu_types) == ["V100", "A100"]
    assert c.gpus_of_type("V100") == c.gpus_of_type("A100") == 32
    v100, a100 = c.nodes[0], c.nodes[4]
    assert (v100.cpus, v100.mem_gb, v100.nics, v100.nic.bandwidth) == (40, 512.0, 4, 12.5e9)   # DGX-1
    assert (a100.cpus, a100.mem_gb, a100.nics, a100.nic.bandwidth) == (128, 1024.0, 8, 25e9)  # DGX A100
    assert v100.intra.bandwidth == 150e9 and a100.intra.bandwidth == 300e9   # NVLink 300 / 600 GB/s in total
    assert Cluster.preset("sixteen_racks_v100").num_gpus == 1024
    assert "64 GPUs on 8 nodes in 2 racks" in c.summary()
    for name in cl.PRESETS:
        assert Cluster.preset(name).num_gpus > 0


def test_uniform_cluster_and_its_errors():
    c = Cluster.uniform(nodes=4, gpus_per_node=2, racks=2)
    assert c.num_gpus == 8 and c.racks == ("r0", "r1") and c.rack_of("n2") == "r1"
    assert c.gpu_label(3) == "n1/gpu1"
    assert Cluster.uniform().num_gpus == 1
    with pytest.raises(ValueError, match="gpus_per_node must be a positive integer"):
        Cluster.uniform(nodes=1, gpus_per_node=0)
    with pytest.raises(ValueError, match="3 racks for 2 nodes"):
        Cluster.uniform(nodes=2, racks=3)
    with pytest.raises(ValueError, match="unknown GPU type 'B200'"):
        Cluster([Node("x", "B200", 8, 64, 512.0)])
    with pytest.raises(ValueError, match="unique"):
        Cluster([Node("x", "V100", 8, 64, 512.0), Node("x", "V100", 8, 64, 512.0)])
    with pytest.raises(ValueError, match="oversubscription"):
        Cluster.uniform(nodes=2, racks=2, oversubscription=0.5)


def test_ring_allreduce_closed_form_inside_a_node():
    c = Cluster.preset("one_dgx1_v100")
    link = c.nodes[0].intra
    n = 100e6
    for p in (2, 4, 8):
        want = 2 * (p - 1) * link.alpha + 2 * (p - 1) / p * n / link.bandwidth
        assert cl.allreduce_time(c, range(p), n) == pytest.approx(want)
        assert cl.ring_allreduce_time(p, n, link.alpha, link.bandwidth) == pytest.approx(want)
    assert cl.allreduce_time(c, [3], n) == 0.0


def test_ring_across_nodes_is_limited_by_the_slowest_hop():
    c = Cluster.uniform(nodes=2, gpus_per_node=4, nic="ib_edr", nics=1)
    n, p = 400e6, 8
    nvlink, nic = c.nodes[0].intra, LINKS["ib_edr"]
    slowest = max(nvlink.alpha + n / p / nvlink.bandwidth, nic.alpha + n / p / nic.bandwidth)
    assert cl.allreduce_time(c, range(8), n) == pytest.approx(2 * (p - 1) * slowest)
    # the NIC is the bottleneck: the closed form with the NIC's link
    assert cl.allreduce_time(c, range(8), n) == pytest.approx(cl.ring_allreduce_time(p, n, nic.alpha, nic.bandwidth))
    # racks behind a 4:1 spine: a quarter of the NIC bandwidth
    r = Cluster.uniform(nodes=2, gpus_per_node=4, racks=2, oversubscription=4.0)
    assert cl.allreduce_time(r, [0, 4], n) == pytest.approx(
        cl.ring_allreduce_time(2, n, nic.alpha, nic.bandwidth / 4))


def test_compute_follows_the_roofline():
    v100, a100 = GPU_TYPES["V100"], GPU_TYPES["A100"]
    lstm, vgg = MODELS["lstm_lm"], MODELS["vgg16"]
    # memory-bound: time = flops / (efficiency * bandwidth * intensity)
    assert compute_time(lstm, v100) == pytest.approx(lstm.step_flops / (EFFICIENCY * 900e9 * lstm.intensity))
    assert compute_time(lstm, v100) / compute_time(lstm, a100) == pytest.approx(1555 / 900)   # the HBM ratio
    assert compute_time(vgg, v100) / compute_time(vgg, a100) == pytest.approx(min(312e12, 1555e9 * 200) / 125e12)
    # ResNet-50 at batch 64 on a V100: about 1,400 images/s (NVIDIA's published mixed-precision figure is close)
    assert 64 / compute_time(MODELS["resnet50"], v100) == pytest.approx(1421, rel=0.01)


def test_rate_is_one_when_packed_on_the_reference_and_placement_slows_comm_heavy_jobs():
    c = Cluster.preset("four_racks_v100")
    vgg = MODELS["vgg16"]
    assert cl.rate(c, vgg, range(8), 8) == pytest.approx(1.0)
    assert cl.rate(c, vgg, range(16), 16) == pytest.approx(1.0)            # two nodes in one rack: as packed
    spread = [0, 8, 16, 24, 32, 40, 48, 56]                                 # 8 nodes across 2 racks
    assert cl.rate(c, vgg, spread, 8) < 0.6
    assert cl.rate(c, MODELS["lstm_lm"], spread, 8) > cl.rate(c, vgg, spread, 8)   # less to all-reduce per FLOP
    two = Cluster.preset("two_racks_v100_a100")
    assert cl.rate(two, vgg, range(32, 40), 8) == pytest.approx(
        compute_time(vgg, GPU_TYPES["V100"]) / compute_time(vgg, GPU_TYPES["A100"]), rel=0.1)
    st_ = cl.step_time(c, vgg, spread)
    assert st_.comm_fraction > 0.4 and st_.total == st_.compute + st_.comm
    with pytest.raises(ValueError, match="one type"):
        cl.step_time(two, vgg, [0, 40])


def test_placement_rules_on_hand_made_free_lists():
    c = Cluster.uniform(nodes=6, gpus_per_node=8, racks=2)   # r0: n0-n2, r1: n3-n5
    free = {"n0": 2, "n1": 8, "n2": 3, "n3": 6, "n4": 6, "n5": 7}
    assert cl.pack(free, 2, c) == {"n0": 2}                       # best fit: keep n1 whole
    assert cl.pack(free, 8, c) == {"n1": 8}
    assert cl.spread(free, 3, c) == {"n1": 1, "n5": 1, "n3": 1}
    # 12 GPUs: no node holds them; pack takes the roomiest nodes (n1 in r0, n5 in r1: crossing racks),
    # topology keeps the gang in one rack (r1: n5 + n3 — two nodes, like pack, but one rack)
    assert cl.pack(free, 12, c) == {"n1": 8, "n5": 4}
    assert cl.topology_aware(free, 12, c) == {"n5": 7, "n3": 5}
    # 30 GPUs: no rack holds them (r0 13, r1 19): both racks, the fewest nodes inside them
    assert cl.topology_aware(free, 30, c) == {"n1": 8, "n5": 7, "n3": 6, "n4": 6, "n2": 3}


@settings(max_examples=60, deadline=None)
@given(free=st.lists(st.integers(0, 8), min_size=1, max_size=8), frac=st.floats(0.01, 1.0))
def test_placement_rules_take_exactly_n_free_gpus(free, frac):
    c = Cluster.uniform(nodes=len(free), gpus_per_node=8, racks=min(2, len(free)))
    offered = {f"n{i}": f for i, f in enumerate(free) if f}
    total = sum(offered.values())
    if not total:
        return
    n = max(1, int(frac * total))
    for rule in cl.PLACEMENTS.values():
        got = rule(offered, n, c)
        assert sum(got.values()) == n and all(0 < k <= offered[name] for name, k in got.items())
    assert len(cl.pack(offered, n, c)) <= len(cl.spread(offered, n, c))
    best_nodes = len(cl.pack(offered, n, c))
    assert len(cl.topology_aware(offered, n, c)) >= 1
    if any(f >= n for f in offered.values()):
        assert best_nodes == 1 and len(cl.topology_aware(offered, n, c)) == 1
