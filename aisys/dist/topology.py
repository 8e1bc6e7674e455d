"""Topology: devices, switches and the links between them, each link with an α (latency) and a β (bandwidth).

The α-β model (Hockney 1994; Thakur, Rabenseifner & Gropp 2005) prices one message of n bytes as
α + n/B: a start-up latency plus the bytes over the bandwidth B (β = 1/B seconds per byte). A path over
several links pays every link's α and runs at the slowest link's bandwidth; links are full duplex, one
directed link per direction. When several messages share a link at the same time they share its
bandwidth (the simulator counts them), which is how a switch port or a PCIe uplink becomes a bottleneck.

Bandwidths are bytes per second in one direction and are printed in GB/s with the Gbps figure beside
them (:mod:`aisys.dist.units`). Presets cite where each figure comes from; latencies are of the order of
NCCL's own tuning model (``NVIDIA/nccl: src/graph/tuning.cc``, table ``hwLat``, ring / Simple protocol:
3.4 µs per step on NVLink, 5.7 µs on PCIe, 9.6 µs over the network).

Routing is part of the topology: a full mesh sends directly, a switch (NVSwitch) goes up to the switch and
down, a cluster goes through NVSwitch inside a node and through each GPU's own NIC between nodes, a torus
routes dimension by dimension, and any other graph takes a shortest path.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .units import format_bandwidth, format_time, from_gbps

__all__ = ["LinkType", "Topology", "PRESETS", "LINK_TYPES"]


@dataclass(frozen=True)
class LinkType:
    """A kind of link: α seconds per message per hop, ``bandwidth`` bytes/s per direction, and its source."""
    name: str
    alpha: float
    bandwidth: float
    source: str = ""

    def __post_init__(self):
        for what, v in (("alpha", self.alpha), ("bandwidth", self.bandwidth)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"LinkType {self.name!r}: {what} must be a finite number >= 0, got {v!r}")
        if self.bandwidth <= 0:
            raise ValueError(f"LinkType {self.name!r}: bandwidth must be > 0 bytes/s, got {self.bandwidth!r} "
                             f"(25 GB/s is bandwidth=25e9)")

    @property
    def beta(self) -> float:
        """Seconds per byte (1 / bandwidth)."""
        return 1.0 / self.bandwidth

    def time(self, nbytes: float) -> float:
        """Seconds for one message of ``nbytes`` over this link: α + n / bandwidth."""
        return self.alpha + nbytes / self.bandwidth

    def describe(self) -> str:
        return f"{self.name}: {format_bandwidth(self.bandwidth)} per direction, α {format_time(self.alpha)} per hop"

    def with_(self, **changes) -> "LinkType":
        return LinkType(**{**self.__dict__, **changes})


# Link figures used by the presets. Bandwidth is per direction.
LINK_TYPES = {
    "nvlink3": LinkType(
        "NVLink 3 via NVSwitch (A100)", alpha=1.7e-6, bandwidth=300e9,
        source="NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020): 12 third-generation NVLinks per GPU, "
               "600 GB/s total = 300 GB/s per direction; DGX A100 connects 8 GPUs through 6 NVSwitches. "
               "α: NCCL tuning.cc hwLat NVLink ring/Simple 3.4 µs per step, split over the 2 hops GPU-switch-GPU"),
    "nvlink4": LinkType(
        "NVLink 4 via NVSwitch (H100)", alpha=1.7e-6, bandwidth=450e9,
        source="NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022): 18 fourth-generation NVLinks, "
               "900 GB/s total = 450 GB/s per direction. α as for NVLink 3 (NCCL tuning.cc hwLat)"),
    "pcie4_x16": LinkType(
        "PCIe 4.0 x16", alpha=1.9e-6, bandwidth=16e9 * 16 * 128 / 130 / 8,
        source="PCI-SIG PCIe 4.0: 16 GT/s per lane, 128b/130b encoding, x16 = 31.5 GB/s per direction. "
               "α: NCCL tuning.cc hwLat PCI ring/Simple 5.7 µs per step; 1.9 µs per hop gives 3.8 µs under one "
               "switch and 7.6 µs across the CPU"),
    "ib_hdr": LinkType(
        "InfiniBand HDR 200 Gb/s (one NIC per GPU)", alpha=4.8e-6, bandwidth=from_gbps(200),
        source="NVIDIA DGX A100 System Architecture whitepaper (2020): 8 single-port Mellanox ConnectX-6 HDR "
               "200 Gb/s NICs for compute, one per GPU = 25 GB/s per direction. α: NCCL tuning.cc hwLat NET "
               "ring/Simple 9.6 µs per step, split over the 2 hops GPU-NIC-switch-NIC-GPU"),
    "roce_100g": LinkType(
        "RoCE v2 100 Gb/s Ethernet", alpha=6.0e-6, bandwidth=from_gbps(100),
        source="IEEE 802.3 100GBASE: 100 Gb/s = 12.5 GB/s per direction. α: assumption, a little above NCCL's "
               "InfiniBand figure (RDMA over Ethernet adds switch buffering)"),
    "tpu_v3_ici": LinkType(
        "TPU v3 inter-core interconnect (ICI)", alpha=1.0e-6, bandwidth=from_gbps(656),
        source="Jouppi et al., 'A Domain-Specific Supercomputer for Training Deep Neural Networks', CACM 2020, "
               "Table 3: TPUv3 has 4 ICI links at 656 Gbit/s = 82 GB/s per direction, wired as a 2-D torus. "
               "α: assumption (the paper gives no per-hop latency)"),
}


def _positive_int(where: str, name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")
    return int(v)


def _link_type(where: str, alpha, bandwidth, name: str) -> LinkType:
    if bandwidth is None:
        raise ValueError(f"{where}: give bandwidth= in bytes per second per direction (25 GB/s is 25e9)")
    return LinkType(name, alpha=float(alpha), bandwidth=float(bandwidth), source="given by the caller")


class Topology:
    """Devices 0..p-1 (the ranks), extra vertices (switches, NICs, CPUs) and directed links between them.

    Build one with a class method (``fully_connected``, ``ring``, ``switch``, ``torus2d``, ``cluster``,
    ``pcie_tree``) or ``Topology.preset(name)``. ``node_of[r]`` says which node (server) rank r sits in;
    hierarchical algorithms use it. ``paths(src, dst)`` routes many messages at once.
    """

    def __init__(self, name: str, ndevices: int, vertex_names: list[str], link_src, link_dst, link_kind,
                 link_types: list[LinkType], *, routing: str = "shortest", node_of=None, positions=None,
                 description: str = "", torus_shape: tuple[int, int] | None = None):
        where = f"Topology {name!r}"
        self.name = str(name)
        self.ndevices = _positive_int(where, "ndevices", ndevices)
        self.vertex_names = list(vertex_names)
        if len(self.vertex_names) < self.ndevices:
            raise ValueError(f"{where}: {len(self.vertex_names)} vertex names for {self.ndevices} devices")
        self.link_src = np.asarray(link_src, dtype=np.int64)
        self.link_dst = np.asarray(link_dst, dtype=np.int64)
        self.link_kind = np.asarray(link_kind, dtype=np.int64)
        if not (self.link_src.shape == self.link_dst.shape == self.link_kind.shape):
            raise ValueError(f"{where}: link_src, link_dst and link_kind must have one entry per link")
        nv = len(self.vertex_names)
        if self.link_src.size and (self.link_src.min() < 0 or self.link_src.max() >= nv
                                   or self.link_dst.min() < 0 or self.link_dst.max() >= nv):
            raise ValueError(f"{where}: a link names a vertex outside 0..{nv - 1}")
        self.link_types = list(link_types)
        if self.link_kind.size and (self.link_kind.min() < 0 or self.link_kind.max() >= len(self.link_types)):
            raise ValueError(f"{where}: link_kind indexes {len(self.link_types)} link types")
        alphas = np.array([t.alpha for t in self.link_types], dtype=float)
        bws = np.array([t.bandwidth for t in self.link_types], dtype=float)
        self.link_alpha = alphas[self.link_kind] if self.link_kind.size else np.zeros(0)
        self.link_bandwidth = bws[self.link_kind] if self.link_kind.size else np.zeros(0)
        if routing not in ("direct", "star", "cluster", "torus", "shortest"):
            raise ValueError(f"{where}: routing {routing!r} is not one of direct, star, cluster, torus, shortest")
        self.routing = routing
        self.node_of = (np.zeros(self.ndevices, dtype=np.int64) if node_of is None
                        else np.asarray(node_of, dtype=np.int64))
        if self.node_of.shape != (self.ndevices,):
            raise ValueError(f"{where}: node_of needs one node id per device ({self.ndevices}), "
                             f"got shape {self.node_of.shape}")
        self.positions = None if positions is None else np.asarray(positions, dtype=float)
        self.description = description
        self.torus_shape = torus_shape
        self._pair_cache: dict[tuple[int, int], tuple[int, ...]] = {}
        self._adj: dict[int, list[tuple[int, int]]] | None = None

    # ---- construction helpers ------------------------------------------------------------------
    @classmethod
    def fully_connected(cls, n: int, alpha: float = 5e-6, bandwidth: float | None = None,
                        name: str | None = None) -> "Topology":
        """A full mesh: one dedicated link per ordered pair (p·(p−1) links), so messages never share one."""
        n = _positive_int("Topology.fully_connected", "n", n)
        lt = _link_type("Topology.fully_connected", alpha, bandwidth, "point-to-point link")
        src = np.repeat(np.arange(n), n)
        dst = np.tile(np.arange(n), n)
        keep = src != dst
        return cls(name or f"fully connected x{n}", n, [f"rank {i}" for i in range(n)], src[keep], dst[keep],
                   np.zeros(int(keep.sum()), np.int64), [lt], routing="direct", positions=_circle(n),
                   description=f"{n} devices, a dedicated link between every pair: {lt.describe()}")

    @classmethod
    def switch(cls, n: int, alpha: float = 5e-6, bandwidth: float | None = None, name: str | None = None,
               link: LinkType | None = None, switch_name: str = "switch") -> "Topology":
        """n devices on one non-blocking switch (a crossbar such as NVSwitch): each device has one port up and
        one down, so a device sending to two peers at once shares its port. ``alpha`` is the end-to-end
        latency of one message (half on each hop)."""
        n = _positive_int("Topology.switch", "n", n)
        lt = link if link is not None else _link_type("Topology.switch", alpha / 2, bandwidth, "switch port")
        sw = n
        src = np.empty(2 * n, np.int64)
        dst = np.empty(2 * n, np.int64)
        src[0::2], dst[0::2] = np.arange(n), sw          # link 2r: device r -> switch
        src[1::2], dst[1::2] = sw, np.arange(n)          # link 2r+1: switch -> device r
        pos = np.vstack([_circle(n), [[0.0, 0.0]]])
        return cls(name or f"switch x{n}", n, [f"rank {i}" for i in range(n)] + [switch_name], src, dst,
                   np.zeros(2 * n, np.int64), [lt], routing="star", positions=pos,
                   description=f"{n} devices on one {switch_name}: {lt.describe()}")

    @classmethod
    def ring(cls, n: int, alpha: float = 5e-6, bandwidth: float | None = None, name: str | None = None) -> "Topology":
        """A bidirectional ring: device i linked to i±1; other pairs go the shorter way round."""
        n = _positive_int("Topology.ring", "n", n)
        lt = _link_type("Topology.ring", alpha, bandwidth, "ring link")
        pairs = sorted({(i, (i + 1) % n) for i in range(n) if n > 1} | {((i + 1) % n, i) for i in range(n) if n > 1})
        src = [a for a, _ in pairs]
        dst = [b for _, b in pairs]
        return cls(name or f"ring x{n}", n, [f"rank {i}" for i in range(n)], src, dst, [0] * len(src), [lt],
                   routing="shortest", positions=_circle(n), description=f"{n} devices in a ring: {lt.describe()}")

    @classmethod
    def torus2d(cls, rows: int, cols: int, alpha: float = 1e-6, bandwidth: float | None = None,
                name: str | None = None, link: LinkType | None = None) -> "Topology":
        """A rows × cols 2-D torus (wrap-around mesh); rank = row·cols + col; dimension-order routing."""
        rows = _positive_int("Topology.torus2d", "rows", rows)
        cols = _positive_int("Topology.torus2d", "cols", cols)
        lt = link if link is not None else _link_type("Topology.torus2d", alpha, bandwidth, "torus link")
        pairs = set()
        for r in range(rows):
            for c in range(cols):
                me = r * cols + c
                for nb in (r * cols + (c + 1) % cols, r * cols + (c - 1) % cols,
                           ((r + 1) % rows) * cols + c, ((r - 1) % rows) * cols + c):
                    if nb != me:
                        pairs.add((me, nb))
        pairs = sorted(pairs)
        n = rows * cols
        pos = np.array([[c, -r] for r in range(rows) for c in range(cols)], dtype=float)
        return cls(name or f"torus {rows}x{cols}", n, [f"rank {i}" for i in range(n)], [a for a, _ in pairs],
                   [b for _, b in pairs], [0] * len(pairs), [lt], routing="torus", positions=pos,
                   torus_shape=(rows, cols), description=f"{rows}x{cols} 2-D torus: {lt.describe()}")

    @classmethod
    def cluster(cls, nodes: int, per_node: int, intra: LinkType | None = None, inter: LinkType | None = None,
                name: str | None = None) -> "Topology":
        """``nodes`` servers of ``per_node`` GPUs: inside a node every GPU sits on the node's switch (NVSwitch);
        between nodes each GPU goes through its own NIC into one non-blocking network switch (a fat tree
        seen as one crossbar). Rank = node·per_node + local rank."""
        nodes = _positive_int("Topology.cluster", "nodes", nodes)
        per_node = _positive_int("Topology.cluster", "per_node", per_node)
        intra = intra or LINK_TYPES["nvlink3"]
        inter = inter or LINK_TYPES["ib_hdr"]
        n = nodes * per_node
        node_sw = n + np.arange(nodes)
        net_sw = n + nodes
        r = np.arange(n)
        node_of = r // per_node
        src = np.empty(4 * n, np.int64)
        dst = np.empty(4 * n, np.int64)
        kind = np.empty(4 * n, np.int64)
        src[0::4], dst[0::4], kind[0::4] = r, node_sw[node_of], 0     # 4r:   GPU -> node switch
        src[1::4], dst[1::4], kind[1::4] = node_sw[node_of], r, 0     # 4r+1: node switch -> GPU
        src[2::4], dst[2::4], kind[2::4] = r, net_sw, 1               # 4r+2: GPU -> NIC -> network
        src[3::4], dst[3::4], kind[3::4] = net_sw, r, 1               # 4r+3: network -> NIC -> GPU
        names = [f"rank {i}" for i in range(n)] + [f"node {k} switch" for k in range(nodes)] + ["network switch"]
        pos = np.zeros((n + nodes + 1, 2))
        for k in range(nodes):
            ang = np.linspace(0, 2 * np.pi, per_node, endpoint=False)
            cx = 3.0 * k
            pos[k * per_node:(k + 1) * per_node] = np.c_[cx + np.cos(ang), np.sin(ang)]
            pos[n + k] = (cx, 0.0)
        pos[net_sw] = (3.0 * (nodes - 1) / 2, -2.2)
        return cls(name or f"cluster {nodes}x{per_node}", n, names, src, dst, kind, [intra, inter],
                   routing="cluster", node_of=node_of, positions=pos,
                   description=f"{nodes} nodes x {per_node} GPUs; inside a node {intra.describe()}; "
                               f"between nodes {inter.describe()}")

    @classmethod
    def pcie_tree(cls, n: int = 8, per_switch: int = 4, link: LinkType | None = None,
                  name: str | None = None) -> "Topology":
        """GPUs under PCIe switches under one CPU root complex (no NVLink): GPUs on the same switch talk
        through it; others cross the CPU, sharing the switch's uplink."""
        n = _positive_int("Topology.pcie_tree", "n", n)
        per_switch = _positive_int("Topology.pcie_tree", "per_switch", per_switch)
        link = link or LINK_TYPES["pcie4_x16"]
        nsw = math.ceil(n / per_switch)
        cpu = n + nsw
        src, dst = [], []
        for r in range(n):
            sw = n + r // per_switch
            src += [r, sw]
            dst += [sw, r]
        for k in range(nsw):
            src += [n + k, cpu]
            dst += [cpu, n + k]
        names = [f"rank {i}" for i in range(n)] + [f"PCIe switch {k}" for k in range(nsw)] + ["CPU root complex"]
        pos = np.zeros((n + nsw + 1, 2))
        for r in range(n):
            pos[r] = (r - (n - 1) / 2, -2.0)
        for k in range(nsw):
            members = [r for r in range(n) if r // per_switch == k]
            pos[n + k] = (np.mean([pos[r][0] for r in members]), -1.0)
        pos[cpu] = (0.0, 0.0)
        return cls(name or f"PCIe tree x{n}", n, names, src, dst, [0] * len(src), [link], routing="shortest",
                   positions=pos, description=f"{n} GPUs, {per_switch} per PCIe switch, switches under one CPU: "
                                              f"{link.describe()}")

    @classmethod
    def preset(cls, name: str) -> "Topology":
        """A named topology with cited figures; ``Topology.presets()`` lists them."""
        try:
            build = PRESETS[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown topology preset {name!r}; choose one of {sorted(PRESETS)}") from None
        return build()

    @staticmethod
    def presets() -> list[str]:
        return sorted(PRESETS)

    # ---- facts ----------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.ndevices

    @property
    def nlinks(self) -> int:
        return int(self.link_src.size)

    @property
    def nodes(self) -> list[list[int]]:
        """Ranks grouped by node, in node order."""
        out: dict[int, list[int]] = {}
        for r, k in enumerate(self.node_of.tolist()):
            out.setdefault(k, []).append(r)
        return [out[k] for k in sorted(out)]

    def link_name(self, link: int) -> str:
        return f"{self.vertex_names[self.link_src[link]]} -> {self.vertex_names[self.link_dst[link]]}"

    def check_ranks(self, p: int, where: str = "") -> None:
        """A clear error when a collective asks for more ranks than the topology has devices."""
        if p > self.ndevices:
            raise ValueError(f"{where + ': ' if where else ''}{p} ranks do not fit topology {self.name!r}, which "
                             f"has {self.ndevices} devices (ranks 0..{self.ndevices - 1}); use a topology with at "
                             f"least {p} devices, e.g. Topology.fully_connected({p}, ...)")

    # ---- routing ----------------------------------------------------------------------------------
    def paths(self, src, dst) -> np.ndarray:
        """Link ids of the route of each message ``src[i] -> dst[i]``: an int array [messages, hops],
        padded with -1. A message to oneself has no hops."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        p = self.ndevices
        if src.size and (src.min() < 0 or dst.min() < 0 or src.max() >= p or dst.max() >= p):
            bad = int(max(src.max(), dst.max()))
            self.check_ranks(bad + 1, "routing")
            raise ValueError(f"routing: negative rank in {src.tolist()[:8]} / {dst.tolist()[:8]}")
        local = src == dst
        if self.routing == "direct":
            ids = src * (p - 1) + dst - (dst > src)
            out = ids[:, None]
        elif self.routing == "star":
            out = np.stack([2 * src, 2 * dst + 1], axis=1)
        elif self.routing == "cluster":
            same = self.node_of[src] == self.node_of[dst]
            out = np.where(same[:, None], np.stack([4 * src, 4 * dst + 1], axis=1),
                           np.stack([4 * src + 2, 4 * dst + 3], axis=1))
        else:
            keys = src * p + dst
            uniq, inv = np.unique(keys, return_inverse=True)
            routes = [self._route_pair(int(k) // p, int(k) % p) for k in uniq]
            h = max((len(r) for r in routes), default=0)
            table = np.full((len(routes), max(h, 1)), -1, np.int64)
            for i, r in enumerate(routes):
                table[i, :len(r)] = r
            out = table[inv.reshape(-1)] if len(routes) else np.full((0, 1), -1, np.int64)
        out = np.array(out, dtype=np.int64, copy=True).reshape(len(src), -1)
        out[local] = -1
        return out

    def route(self, src: int, dst: int) -> list[int]:
        """The link ids from ``src`` to ``dst``, in order."""
        return [int(x) for x in self.paths([src], [dst])[0] if x >= 0]

    def _adjacency(self) -> dict[int, list[tuple[int, int]]]:
        if self._adj is None:
            adj: dict[int, list[tuple[int, int]]] = {}
            for i, (a, b) in enumerate(zip(self.link_src.tolist(), self.link_dst.tolist())):
                adj.setdefault(a, []).append((b, i))
            self._adj = adj
        return self._adj

    def _route_pair(self, s: int, d: int) -> tuple[int, ...]:
        key = (s, d)
        hit = self._pair_cache.get(key)
        if hit is not None:
            return hit
        if s == d:
            route: tuple[int, ...] = ()
        elif self.routing == "torus":
            route = self._torus_route(s, d)
        else:
            route = self._bfs_route(s, d)
        self._pair_cache[key] = route
        return route

    def _bfs_route(self, s: int, d: int) -> tuple[int, ...]:
        adj = self._adjacency()
        prev: dict[int, tuple[int, int]] = {s: (-1, -1)}
        q = deque([s])
        while q:
            u = q.popleft()
            if u == d:
                break
            for v, link in adj.get(u, ()):
                if v not in prev:
                    prev[v] = (u, link)
                    q.append(v)
        if d not in prev:
            raise ValueError(f"topology {self.name!r} has no path from {self.vertex_names[s]} to "
                             f"{self.vertex_names[d]}")
        out = []
        v = d
        while v != s:
            u, link = prev[v]
            out.append(link)
            v = u
        return tuple(reversed(out))

    def _torus_route(self, s: int, d: int) -> tuple[int, ...]:
        """Dimension-order routing: along the row (columns) first, then along the column, the shorter way."""
        rows, cols = self.torus_shape
        if not hasattr(self, "_link_index"):
            self._link_index = {(a, b): i for i, (a, b) in
                                enumerate(zip(self.link_src.tolist(), self.link_dst.tolist()))}
        out = []
        r, c = divmod(s, cols)
        tr, tc = divmod(d, cols)
        while c != tc:
            step = 1 if (tc - c) % cols <= (c - tc) % cols else -1
            nc = (c + step) % cols
            out.append(self._link_index[(r * cols + c, r * cols + nc)])
            c = nc
        while r != tr:
            step = 1 if (tr - r) % rows <= (r - tr) % rows else -1
            nr = (r + step) % rows
            out.append(self._link_index[(r * cols + c, nr * cols + c)])
            r = nr
        return tuple(out)

    # ---- text -----------------------------------------------------------------------------------
    def summary(self) -> str:
        kinds = np.bincount(self.link_kind, minlength=len(self.link_types)) if self.nlinks else []
        lines = [f"Topology {self.name!r}: {self.ndevices} devices, {len(self.vertex_names) - self.ndevices} "
                 f"switches, {self.nlinks} directed links, {len(self.nodes)} node(s), routing {self.routing}"]
        if self.description:
            lines.append(f"  {self.description}")
        for t, count in zip(self.link_types, kinds):
            lines.append(f"  {int(count)} x {t.describe()}")
            if t.source and t.source != "given by the caller":
                lines.append(f"      source: {t.source}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Topology {self.name!r}: {self.ndevices} devices, {self.nlinks} links>"


def _circle(n: int) -> np.ndarray:
    ang = np.pi / 2 - 2 * np.pi * np.arange(n) / max(n, 1)
    return np.c_[np.cos(ang), np.sin(ang)]


def _dgx(link_key: str, name: str) -> Topology:
    t = Topology.switch(8, link=LINK_TYPES[link_key], name=name, switch_name="NVSwitch")
    return t


PRESETS = {
    "dgx_a100": lambda: _dgx("nvlink3", "DGX A100 (8x A100, NVSwitch)"),
    "dgx_h100": lambda: _dgx("nvlink4", "DGX H100 (8x H100, NVSwitch)"),
    "pcie_gen4": lambda: Topology.pcie_tree(8, 4, LINK_TYPES["pcie4_x16"], name="8 GPUs on PCIe 4.0 (2 switches)"),
    "dgx_a100_x2_ib": lambda: Topology.cluster(2, 8, LINK_TYPES["nvlink3"], LINK_TYPES["ib_hdr"],
                                               name="2x DGX A100 over InfiniBand HDR"),
    "dgx_a100_x2_roce": lambda: Topology.cluster(2, 8, LINK_TYPES["nvlink3"], LINK_TYPES["roce_100g"],
                                                 name="2x DGX A100 over RoCE 100 Gb/s"),
    "tpu_v3_4x4": lambda: Topology.torus2d(4, 4, link=LINK_TYPES["tpu_v3_ici"], name="TPU v3 4x4 torus"),
}
