"""The cluster model: GPU types, links, nodes in racks, and presets built from vendor datasheets.

A *link* is the α-β model's pair: a message of n bytes takes ``alpha + n / bandwidth`` seconds
(β = 1 / bandwidth, seconds per byte). Three kinds of link join two GPUs of a cluster:

* inside a node — NVLink when the GPU has it (half its total NVLink bandwidth per direction), else PCIe;
* between nodes of one rack — the nodes' InfiniBand/Ethernet NICs (all NICs of a node together, the way
  NCCL spreads its rings over every NIC);
* between racks — the same NICs through the spine, whose bandwidth is divided by its oversubscription.

Figures (datasheet values, per GPU unless said otherwise):

========  ==================  ========  ==========  ==============  ===========================================
GPU       FP16 tensor, dense  memory    HBM         NVLink (total)  source
========  ==================  ========  ==========  ==============  ===========================================
V100      125 TFLOP/s         32 GB     900 GB/s    300 GB/s        NVIDIA Tesla V100 datasheet (SXM2, 2018)
A100      312 TFLOP/s         40 GB     1,555 GB/s  600 GB/s        NVIDIA A100 datasheet (SXM4 40 GB, 2020)
A100-80   312 TFLOP/s         80 GB     2,039 GB/s  600 GB/s        NVIDIA A100 datasheet (SXM4 80 GB, 2021)
H100      989 TFLOP/s         80 GB     3,350 GB/s  900 GB/s        NVIDIA H100 datasheet (SXM5, 2022)
T4        65 TFLOP/s          16 GB     320 GB/s    — (PCIe 3)      NVIDIA T4 datasheet (2019)
========  ==================  ========  ==========  ==============  ===========================================

Nodes: DGX-1 (8 V100, 2x20-core Xeon E5-2698 v4 = 40 cores, 512 GB, 4x EDR InfiniBand 100 Gb/s) and
DGX A100 (8 A100, 2x64-core EPYC 7742 = 128 cores, 1 TB, 8x HDR InfiniBand 200 Gb/s for compute), from
NVIDIA's DGX-1 and DGX A100 datasheets. Link latencies (α) are not datasheet figures: they are
representative small-message latencies of a collective library step (a few µs on NVLink and
InfiniBand, tens of µs over TCP), stated here as assumptions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..dist.topology import LinkType as Link   # one α-β link record for the whole stack (dist's)

__all__ = ["GPUType", "Link", "Node", "Cluster", "GPU_TYPES", "LINKS", "PRESETS"]


@dataclass(frozen=True)
class GPUType:
    """One accelerator model: the roofline's two ceilings, memory, and its NVLink bandwidth."""
    name: str
    tflops: float            # dense FP16/BF16 tensor-core peak, TFLOP/s (what mixed-precision training uses)
    mem_gb: float            # device memory, GB
    hbm_gbs: float           # device memory bandwidth, GB/s
    nvlink_gbs: float = 0.0  # total (both directions) NVLink bandwidth per GPU, GB/s; 0 = PCIe only
    source: str = ""

    @property
    def peak_flops(self) -> float:
        return self.tflops * 1e12

    @property
    def bandwidth(self) -> float:
        """Device memory bandwidth, bytes/s."""
        return self.hbm_gbs * 1e9


GPU_TYPES: dict[str, GPUType] = {
    "V100": GPUType("V100", 125.0, 32.0, 900.0, 300.0, "NVIDIA Tesla V100 datasheet, SXM2 32 GB"),
    "A100": GPUType("A100", 312.0, 40.0, 1555.0, 600.0, "NVIDIA A100 datasheet, SXM4 40 GB"),
    "A100-80": GPUType("A100-80", 312.0, 80.0, 2039.0, 600.0, "NVIDIA A100 datasheet, SXM4 80 GB"),
    "H100": GPUType("H100", 989.0, 80.0, 3350.0, 900.0, "NVIDIA H100 datasheet, SXM5"),
    "T4": GPUType("T4", 65.0, 16.0, 320.0, 0.0, "NVIDIA T4 datasheet (PCIe)"),
}

LINKS: dict[str, Link] = {
    "pcie3": Link("PCIe 3.0 x16", 5e-6, 15.75e9, "PCI-SIG: 8 GT/s x16 lanes, 128b/130b encoding"),
    "ib_edr": Link("InfiniBand EDR 100 Gb/s", 5e-6, 12.5e9, "InfiniBand Trade Association: EDR 4x = 100 Gb/s"),
    "ib_hdr": Link("InfiniBand HDR 200 Gb/s", 5e-6, 25e9, "InfiniBand Trade Association: HDR 4x = 200 Gb/s"),
    "eth_25g": Link("Ethernet 25 Gb/s (TCP)", 25e-6, 3.125e9, "IEEE 802.3by"),
    "eth_100g": Link("Ethernet 100 Gb/s (TCP)", 25e-6, 12.5e9, "IEEE 802.3bj"),
}
NVLINK_ALPHA = 3e-6   # seconds; see the module docstring: an assumption, not a datasheet figure


def nvlink(gpu: GPUType) -> Link:
    """The in-node link of an NVLink GPU: half its total NVLink bandwidth in each direction."""
    return Link(f"NVLink ({gpu.name})", NVLINK_ALPHA, gpu.nvlink_gbs * 1e9 / 2, gpu.source)


@dataclass(frozen=True)
class Node:
    """A server: ``num_gpus`` GPUs of one type, CPUs and memory, in a rack, with ``nics`` NICs of ``nic``."""
    name: str
    gpu: str
    num_gpus: int
    cpus: int
    mem_gb: float
    rack: str = "rack0"
    nic: Link = field(default_factory=lambda: LINKS["ib_edr"])
    nics: int = 1
    intra: Link | None = None   # GPU-to-GPU inside the node; default NVLink if the GPU has it, else PCIe

    @property
    def nic_bandwidth(self) -> float:
        """All NICs together, bytes/s per direction."""
        return self.nic.bandwidth * self.nics


def _positive(value, what: str, where: str, *, integer: bool = False):
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    if ok and integer:
        ok = float(value).is_integer()
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{where}: {what} must be {kind}, got {value!r}")
    return int(value) if integer else float(value)


class Cluster:
    """Nodes in racks joined by α-β links; GPUs numbered 0..num_gpus-1 node by node.

    ``spine``: the link between racks (default: the nodes' own NICs, no extra latency);
    ``oversubscription``: how many times more NIC bandwidth a rack has than its uplink (≥ 1);
    ``reference_gpu``: the GPU type a job's ``duration`` is measured on (default: the first type listed).
    GPU types are named by key in :data:`GPU_TYPES`, or given as :class:`GPUType` objects.
    """

    def __init__(self, nodes, *, name: str = "cluster", spine: Link | None = None, oversubscription: float = 1.0,
                 reference_gpu: str | None = None):
        nodes = list(nodes)
        if not nodes:
            raise ValueError("Cluster needs at least one node, e.g. Cluster.uniform(nodes=1, gpus_per_node=1)")
        self.name = str(name)
        self.gpu_types: dict[str, GPUType] = {}
        fixed: list[Node] = []
        seen: set[str] = set()
        for i, node in enumerate(nodes):
            if not isinstance(node, Node):
                raise TypeError(f"Cluster node #{i} is a {type(node).__name__}; build nodes with "
                                f"aisys.cluster.Node(name, gpu, num_gpus, cpus, mem_gb, rack=...)")
            where = f"node {node.name!r}"
            if node.name in seen:
                raise ValueError(f"{where}: two nodes share this name; node names must be unique")
            seen.add(node.name)
            gpu = node.gpu
            if isinstance(gpu, GPUType):
                self.gpu_types.setdefault(gpu.name, gpu)
                node = _replace(node, gpu=gpu.name)
            elif gpu in GPU_TYPES:
                self.gpu_types.setdefault(gpu, GPU_TYPES[gpu])
            else:
                raise ValueError(f"{where}: unknown GPU type {gpu!r}; use one of {', '.join(GPU_TYPES)} "
                                 f"or pass a GPUType(...)")
            _positive(node.num_gpus, "num_gpus", where, integer=True)
            _positive(node.cpus, "cpus", where)
            _positive(node.mem_gb, "mem_gb", where)
            _positive(node.nics, "nics", where, integer=True)
            if node.intra is None:
                g = self.gpu_types[node.gpu]
                node = _replace(node, intra=nvlink(g) if g.nvlink_gbs > 0 else LINKS["pcie3"])
            fixed.append(node)
        self.nodes: tuple[Node, ...] = tuple(fixed)
        self.spine = spine
        self.oversubscription = _positive(oversubscription, "oversubscription", "Cluster")
        if self.oversubscription < 1:
            raise ValueError(f"Cluster: oversubscription is the ratio NIC bandwidth : uplink bandwidth, so it is "
                             f">= 1 (1 = non-blocking); got {oversubscription!r}")
        self.racks: tuple[str, ...] = tuple(dict.fromkeys(n.rack for n in self.nodes))
        self.node_index = {n.name: i for i, n in enumerate(self.nodes)}
        self._rack_index = {r: i for i, r in enumerate(self.racks)}
        self.gpu_node: list[int] = []
        self.node_first_gpu: list[int] = []
        for i, n in enumerate(self.nodes):
            self.node_first_gpu.append(len(self.gpu_node))
            self.gpu_node.extend([i] * n.num_gpus)
        self.num_gpus = len(self.gpu_node)
        # position of each GPU in a ring that visits racks, then nodes, in order (crossing each boundary once)
        order = sorted(range(self.num_gpus), key=lambda g: (self._rack_index[self.nodes[self.gpu_node[g]].rack],
                                                           self.gpu_node[g], g))
        self._ring_rank = [0] * self.num_gpus
        for rank, g in enumerate(order):
            self._ring_rank[g] = rank
        self._links: dict[tuple[int, int], Link] = {}
        if reference_gpu is None:
            reference_gpu = next(iter(self.gpu_types))
        if reference_gpu not in self.gpu_types and reference_gpu not in GPU_TYPES:
            raise ValueError(f"Cluster: unknown reference_gpu {reference_gpu!r}; use one of "
                             f"{', '.join(dict.fromkeys([*self.gpu_types, *GPU_TYPES]))}")
        self.reference_gpu = reference_gpu

    # ---- construction -----------------------------------------------------------------------------
    @classmethod
    def uniform(cls, nodes: int = 1, gpus_per_node: int = 1, *, gpu: str = "V100", racks: int = 1,
                cpus_per_node: int | None = None, mem_gb_per_node: float | None = None, nic: str = "ib_edr",
                nics: int = 1, oversubscription: float = 1.0, name: str | None = None) -> "Cluster":
        """``nodes`` identical servers of ``gpus_per_node`` GPUs, dealt into ``racks`` racks in order.

        CPUs and memory default to 8 cores and 64 GB per GPU. The smallest cluster, for hand-checked
        cases: ``Cluster.uniform(nodes=1, gpus_per_node=1)``.
        """
        nodes = _positive(nodes, "nodes", "Cluster.uniform", integer=True)
        gpus_per_node = _positive(gpus_per_node, "gpus_per_node", "Cluster.uniform", integer=True)
        racks = _positive(racks, "racks", "Cluster.uniform", integer=True)
        if racks > nodes:
            raise ValueError(f"Cluster.uniform: {racks} racks for {nodes} nodes leaves a rack empty; use racks <= nodes")
        if nic not in LINKS:
            raise ValueError(f"Cluster.uniform: unknown nic {nic!r}; use one of {', '.join(LINKS)}")
        per_rack = math.ceil(nodes / racks)
        made = [Node(f"n{i}", gpu, gpus_per_node, cpus_per_node or 8 * gpus_per_node,
                     mem_gb_per_node or 64.0 * gpus_per_node, rack=f"r{i // per_rack}", nic=LINKS[nic], nics=nics)
                for i in range(nodes)]
        return cls(made, name=name or f"{nodes}x{gpus_per_node} {gpu}", oversubscription=oversubscription)

    @classmethod
    def preset(cls, name: str) -> "Cluster":
        """A named cluster (see :data:`PRESETS`): ``Cluster.preset("two_racks_v100_a100")``."""
        if name not in PRESETS:
            raise ValueError(f"unknown cluster preset {name!r}; choose one of {', '.join(PRESETS)}")
        return PRESETS[name][1]()

    # ---- reading ----------------------------------------------------------------------------------
    def gpu_type(self, name: str) -> GPUType:
        if name in self.gpu_types:
            return self.gpu_types[name]
        if name in GPU_TYPES:
            return GPU_TYPES[name]
        raise ValueError(f"unknown GPU type {name!r}; this cluster has {', '.join(self.gpu_types)}")

    def rack_of(self, node: str) -> str:
        return self.nodes[self.node_index[node]].rack

    def rack_index(self, rack: str) -> int:
        return self._rack_index[rack]

    def gpus_of_type(self, gpu: str) -> int:
        return sum(n.num_gpus for n in self.nodes if n.gpu == gpu)

    def node_of_gpu(self, gpu_id: int) -> Node:
        return self.nodes[self.gpu_node[gpu_id]]

    def gpu_label(self, gpu_id: int) -> str:
        """``node/gpuK`` — the lane name of a GPU in traces and pictures."""
        node = self.gpu_node[gpu_id]
        return f"{self.nodes[node].name}/gpu{gpu_id - self.node_first_gpu[node]}"

    def ring_order(self, gpus) -> list[int]:
        """The GPUs in the order a ring all-reduce visits them: rack by rack, node by node."""
        return sorted(gpus, key=self._ring_rank.__getitem__)

    def link_between(self, a: int, b: int) -> Link:
        """The α-β link a collective uses between GPUs ``a`` and ``b`` (the one place placement meets cost).

        A later ``aisys.dist`` topology can stand in here: the cost model only asks this and ring_order.
        """
        key = (self.gpu_node[a], self.gpu_node[b])
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = self.link_between_nodes(self.nodes[key[0]], self.nodes[key[1]])
        return link

    def link_between_nodes(self, na: Node, nb: Node) -> Link:
        if na is nb:
            return na.intra
        bw = min(na.nic_bandwidth, nb.nic_bandwidth)
        alpha = max(na.nic.alpha, nb.nic.alpha)
        if na.rack == nb.rack:
            return Link("NIC", alpha, bw)
        bw /= self.oversubscription
        if self.spine is not None:
            bw = min(bw, self.spine.bandwidth)
            alpha += self.spine.alpha
        return Link("spine", alpha, bw)

    def summary(self) -> str:
        lines = [f"Cluster {self.name!r}: {self.num_gpus} GPUs on {len(self.nodes)} nodes in {len(self.racks)} "
                 f"rack{'s' if len(self.racks) != 1 else ''}; reference GPU {self.reference_gpu}"]
        for rack in self.racks:
            members = [n for n in self.nodes if n.rack == rack]
            kinds: dict[tuple, int] = {}
            for n in members:
                key = (n.gpu, n.num_gpus, n.cpus, n.mem_gb, n.intra.name, n.nics, n.nic.name)
                kinds[key] = kinds.get(key, 0) + 1
            for (gpu, g, cpus, mem, intra, nics, nic), count in kinds.items():
                lines.append(f"  {rack}: {count} x [{g} {gpu}, {cpus:g} cores, {mem:g} GB; {intra}; "
                             f"{nics} x {nic}]")
        if len(self.racks) > 1:
            spine = f"{self.spine.name}, " if self.spine else ""
            lines.append(f"  between racks: {spine}oversubscription {self.oversubscription:g}:1")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _replace(node: Node, **changes) -> Node:
    from dataclasses import replace
    return replace(node, **changes)


# ---- presets ------------------------------------------------------------------------------------------

def _dgx1(name: str, rack: str) -> Node:
    return Node(name, "V100", 8, 40, 512.0, rack=rack, nic=LINKS["ib_edr"], nics=4)


def _dgx_a100(name: str, rack: str) -> Node:
    return Node(name, "A100", 8, 128, 1024.0, rack=rack, nic=LINKS["ib_hdr"], nics=8)


def _one_dgx1() -> Cluster:
    return Cluster([_dgx1("dgx1-0", "r0")], name="one_dgx1_v100")


def _two_racks() -> Cluster:
    nodes = [_dgx1(f"v100-{i}", "r0") for i in range(4)] + [_dgx_a100(f"a100-{i}", "r1") for i in range(4)]
    return Cluster(nodes, name="two_racks_v100_a100", spine=LINKS["ib_hdr"], reference_gpu="V100")


def _four_racks() -> Cluster:
    nodes = [_dgx1(f"r{r}n{i}", f"r{r}") for r in range(4) for i in range(4)]
    return Cluster(nodes, name="four_racks_v100", oversubscription=4.0)


def _sixteen_racks() -> Cluster:
    nodes = [_dgx1(f"r{r}n{i}", f"r{r}") for r in range(16) for i in range(8)]
    return Cluster(nodes, name="sixteen_racks_v100", oversubscription=2.0)


def _v100_t4() -> Cluster:
    nodes = [_dgx1(f"v100-{i}", "r0") for i in range(2)]
    nodes += [Node(f"t4-{i}", "T4", 4, 48, 384.0, rack="r1", nic=LINKS["eth_25g"]) for i in range(8)]
    return Cluster(nodes, name="v100_t4", reference_gpu="V100")


PRESETS: dict[str, tuple[str, object]] = {
    "one_dgx1_v100": ("one DGX-1: 8 V100 on NVLink", _one_dgx1),
    "two_racks_v100_a100": ("a rack of 4 DGX-1 (32 V100, 4x EDR each) and a rack of 4 DGX A100 (32 A100, "
                            "8x HDR each): 64 GPUs of two generations", _two_racks),
    "four_racks_v100": ("4 racks x 4 DGX-1 = 128 V100, racks joined through a 4:1 oversubscribed spine",
                        _four_racks),
    "sixteen_racks_v100": ("16 racks x 8 DGX-1 = 1,024 V100, 2:1 oversubscribed spine (the benchmark's cluster)",
                           _sixteen_racks),
    "v100_t4": ("2 DGX-1 (16 V100) and 8 four-T4 servers on 25 Gb/s Ethernet (32 T4): training next to "
                "inference-class GPUs, as in Alibaba PAI's mixed fleet", _v100_t4),
}
