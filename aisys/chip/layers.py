"""Layer records: what one layer of a network computes, in the terms the chip lowers it by.

``Gemm`` (a matmul, ``[M, K] @ [K, N]``), ``Conv`` (NCHW, lowered by im2col), ``Elementwise`` (one vector
instruction, or a fused chain of them), ``Pool``, ``Softmax`` and ``LayerNorm``. ``lower_layers`` turns a list
of them into a tile program; ``graph_to_layers`` makes them from an ``aisys`` graph, reading each op's chip
lowering and cost from the op registry (then ``flops`` and ``nbytes`` are the registry's figures for the op;
records typed by hand count their own: 2 per MAC, one per element).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..framework.shapes import conv_output_size
from .systolic import conv_gemm_dims
from .vector import BINARY_OPS, elementwise_cost, layernorm_cost, pool_cost, softmax_cost

ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "requantize")   # what drains with a matrix tile
                                                    # (TPU's Activate, Ascend's FixPipe, which also requantizes int8)


def _pos(where: str, **vals) -> None:
    for name, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")


def _check_activation(where: str, activation) -> None:
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"{where}: activation must be None or one of {ACTIVATIONS}, got {activation!r}")


def _check_words(where: str, word_bytes, density) -> None:
    if word_bytes is not None:
        _pos(where, word_bytes=word_bytes)
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 <= density <= 1:
        raise ValueError(f"{where}: density (the share of non-zero weights) must be in [0, 1], got {density!r}")


@dataclass(frozen=True)
class _Layer:
    """What every layer record carries besides its shape: the op registry's FLOPs and bytes of the graph node
    it was lowered from (None when typed by hand: then ``flops`` is the record's own count)."""
    registry_flops: int | None = field(default=None, kw_only=True, compare=False)   # provenance, not shape:
    registry_bytes: int | None = field(default=None, kw_only=True, compare=False)   # equal layers compare equal

    def _counted(self, own: int) -> int:
        return own if self.registry_flops is None else self.registry_flops


@dataclass(frozen=True)
class Gemm(_Layer):
    """A fully connected layer / matmul: ``[M, K] @ [K, N]`` (M = batch rows, N = outputs).

    ``word_bytes``: operand width (1 for int8 codes; None: the chip's native word); ``density``: the share of
    non-zero weights (a dense array multiplies the zeros anyway; zero-skipping PEs save their energy).
    ``count`` > 1 is a batched matmul: that many independent products of the same shape, each with its own
    operands (attention's per-head ``q·kᵀ`` and ``p·v``). ``gemm`` and ``ifmap_words`` describe one of them.
    """
    name: str
    M: int
    N: int
    K: int
    activation: str | None = None
    word_bytes: int | None = None
    density: float = 1.0
    count: int = 1

    def __post_init__(self):
        _pos(f"Gemm {self.name!r}", M=self.M, N=self.N, K=self.K, count=self.count)
        _check_activation(f"Gemm {self.name!r}", self.activation)
        _check_words(f"Gemm {self.name!r}", self.word_bytes, self.density)

    kind = "gemm"

    @property
    def gemm(self) -> tuple[int, int, int]:
        return self.M, self.N, self.K

    @property
    def ifmap_words(self) -> int:
        return self.M * self.K

    @property
    def macs(self) -> int:
        return self.count * self.M * self.N * self.K

    @property
    def flops(self) -> int:
        return self._counted(2 * self.macs)

    def io_words(self) -> dict:
        c = self.count
        return {"ifmap": c * self.M * self.K, "filter": c * self.K * self.N, "ofmap": c * self.M * self.N}

    def describe(self) -> str:
        return ((f"{self.count} x " if self.count > 1 else "") + f"gemm {self.M}x{self.K} @ {self.K}x{self.N}"
                + (f" int{8 * self.word_bytes}" if self.word_bytes else "")
                + (f" + {self.activation}" if self.activation else ""))


@dataclass(frozen=True)
class Conv(_Layer):
    """A 2-D convolution, NCHW, ``F`` filters of ``C x kh x kw`` (lowered by im2col)."""
    name: str
    H: int
    W: int
    C: int
    F: int
    kh: int
    kw: int | None = None
    stride: int = 1
    padding: int = 0
    batch: int = 1
    activation: str | None = None
    word_bytes: int | None = None        # as Gemm
    density: float = 1.0

    def __post_init__(self):
        if self.kw is None:
            object.__setattr__(self, "kw", self.kh)
        conv_gemm_dims(self.H, self.W, self.C, self.F, self.kh, self.kw, self.stride, self.padding, self.batch)
        _check_activation(f"Conv {self.name!r}", self.activation)
        _check_words(f"Conv {self.name!r}", self.word_bytes, self.density)

    kind = "conv"

    @property
    def dims(self) -> dict:
        return conv_gemm_dims(self.H, self.W, self.C, self.F, self.kh, self.kw, self.stride, self.padding, self.batch)

    @property
    def gemm(self) -> tuple[int, int, int]:
        d = self.dims
        return d["M"], d["N"], d["K"]

    @property
    def ifmap_words(self) -> int:
        return self.batch * self.C * self.H * self.W

    @property
    def macs(self) -> int:
        M, N, K = self.gemm
        return M * N * K

    @property
    def flops(self) -> int:
        return self._counted(2 * self.macs)

    def io_words(self) -> dict:
        M, N, K = self.gemm
        return {"ifmap": self.ifmap_words, "filter": K * N, "ofmap": M * N}

    def describe(self) -> str:
        d = self.dims
        return (f"conv {self.C}x{self.H}x{self.W} -> {self.F}x{d['OH']}x{d['OW']} k{self.kh}x{self.kw} "
                f"s{self.stride} p{self.padding}" + (f" b{self.batch}" if self.batch > 1 else "")
                + (f" int{8 * self.word_bytes}" if self.word_bytes else "")
                + (f" + {self.activation}" if self.activation else ""))


@dataclass(frozen=True)
class Elementwise(_Layer):
    """An elementwise op over ``elements`` values; binary ops (add, mul, ...) read two tensors.

    A *fused* group (``chain`` = the vector ops it runs, ``inputs`` = the full-size tensors it reads) loads
    its inputs once, runs every op of the chain on the data while it sits in the vector buffer, and stores
    one result: the DRAM traffic of one op, the vector work of all of them. That is fusion's payoff.
    """
    name: str
    op: str
    elements: int
    chain: tuple = ()
    inputs: int = 0
    word_bytes: int | None = None        # element width (None: the chip's native word)

    def __post_init__(self):
        _pos(f"Elementwise {self.name!r}", elements=self.elements)
        _check_words(f"Elementwise {self.name!r}", self.word_bytes, 1.0)
        if not isinstance(self.op, str) or not self.op:
            raise ValueError(f"Elementwise {self.name!r}: op must be a name such as 'relu' or 'add'")
        if self.chain and (not all(isinstance(o, str) and o for o in self.chain) or self.inputs < 1):
            raise ValueError(f"Elementwise {self.name!r}: a fused chain needs op names and inputs ≥ 1, "
                             f"got chain={self.chain!r}, inputs={self.inputs!r}")

    kind = "elementwise"

    @property
    def operands(self) -> int:
        if self.chain:
            return self.inputs
        return 2 if self.op in BINARY_OPS else 1

    @property
    def macs(self) -> int:
        return 0

    @property
    def flops(self) -> int:
        return self._counted(self.elements)

    def io_words(self) -> dict:
        return {"ifmap": self.operands * self.elements, "filter": 0, "ofmap": self.elements}

    def describe(self) -> str:
        return f"{self.op} over {self.elements:,} elements"


@dataclass(frozen=True)
class Pool(_Layer):
    """Max or average pooling with a ``k x k`` window (stride defaults to k)."""
    name: str
    kind_: str
    batch: int
    C: int
    H: int
    W: int
    k: int
    stride: int | None = None
    padding: int = 0
    word_bytes: int | None = None        # element width (None: the chip's native word)

    def __post_init__(self):
        _check_words(f"Pool {self.name!r}", self.word_bytes, 1.0)
        if self.stride is None:
            object.__setattr__(self, "stride", self.k)
        if self.kind_ not in ("max", "avg"):
            raise ValueError(f"Pool {self.name!r}: kind_ must be 'max' or 'avg', got {self.kind_!r}")
        _pos(f"Pool {self.name!r}", batch=self.batch, C=self.C, H=self.H, W=self.W, k=self.k, stride=self.stride)
        if isinstance(self.padding, bool) or not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"Pool {self.name!r}: padding must be an integer >= 0, got {self.padding!r}")
        if self.k > self.H + 2 * self.padding or self.k > self.W + 2 * self.padding:
            raise ValueError(f"Pool {self.name!r}: window {self.k} is larger than the {self.H}x{self.W} input")

    kind = "pool"

    @property
    def out_hw(self) -> tuple[int, int]:
        return (conv_output_size(self.H, self.k, self.stride, self.padding, op=f"Pool {self.name!r}"),
                conv_output_size(self.W, self.k, self.stride, self.padding, op=f"Pool {self.name!r}"))

    @property
    def out_elements(self) -> int:
        oh, ow = self.out_hw
        return self.batch * self.C * oh * ow

    @property
    def macs(self) -> int:
        return 0

    @property
    def flops(self) -> int:
        return self._counted(self.out_elements * self.k * self.k)

    def io_words(self) -> dict:
        return {"ifmap": self.batch * self.C * self.H * self.W, "filter": 0, "ofmap": self.out_elements}

    def describe(self) -> str:
        oh, ow = self.out_hw
        return f"{self.kind_}pool {self.k}x{self.k}/{self.stride}: {self.C}x{self.H}x{self.W} -> {self.C}x{oh}x{ow}"


@dataclass(frozen=True)
class _RowLayer(_Layer):
    """A vector layer that works on whole rows of a ``rows x cols`` tensor (its last axis)."""
    name: str
    rows: int
    cols: int

    macs = 0
    flops_per_element = 1
    filter_words_per_col = 0

    def __post_init__(self):
        _pos(f"{type(self).__name__} {self.name!r}", rows=self.rows, cols=self.cols)

    @property
    def flops(self) -> int:
        return self._counted(self.flops_per_element * self.rows * self.cols)

    def io_words(self) -> dict:
        return {"ifmap": self.rows * self.cols, "filter": self.filter_words_per_col * self.cols,
                "ofmap": self.rows * self.cols}

    def describe(self) -> str:
        return f"{self.kind} {self.rows}x{self.cols}"


@dataclass(frozen=True)
class Softmax(_RowLayer):
    """Softmax over the last axis of a ``rows x cols`` tensor: max, subtract+exp, sum, scale (5 FLOPs an element)."""
    kind = "softmax"
    flops_per_element = 5


@dataclass(frozen=True)
class LayerNorm(_RowLayer):
    """LayerNorm over the last axis of a ``rows x cols`` tensor (8 FLOPs an element; reads a weight and a bias)."""
    kind = "layernorm"
    flops_per_element = 8
    filter_words_per_col = 2


LAYER_TYPES = (Gemm, Conv, Elementwise, Pool, Softmax, LayerNorm)


# ---- how the lowering walks and costs layers (shared by lower_layers and the analytic estimate) ------------
def word_bytes(layer, chip) -> int:
    """Bytes per value a vector layer moves: its own width (int8 codes) or the matrix unit's operand width."""
    return getattr(layer, "word_bytes", None) or chip.matrix.input_bytes


def _fusable(prev, layer) -> bool:
    if not isinstance(prev, (Gemm, Conv)) or not isinstance(layer, Elementwise):
        return False
    M, N, _ = prev.gemm
    return (layer.op in ACTIVATIONS and layer.elements == getattr(prev, "count", 1) * M * N
            and prev.activation is None)


def layer_steps(layers, fuse_activations: bool = True):
    """(layer, activation or None) in lowering order: an activation that directly follows a matmul/conv of the
    same size is folded into it (and skipped as a layer of its own)."""
    i = 0
    while i < len(layers):
        layer, act = layers[i], None
        if isinstance(layer, (Gemm, Conv)):
            act = layer.activation
            if act is None and fuse_activations and i + 1 < len(layers) and _fusable(layer, layers[i + 1]):
                act = layers[i + 1].op
                i += 1
        yield layer, act
        i += 1


def vector_cycles(layer, n: int, chip) -> int:
    """Vector-unit cycles for ``n`` units (rows, channels or elements) of a vector layer on ``chip``."""
    word = getattr(layer, "word_bytes", None)
    pack = max(1, chip.matrix.input_bytes // word) if word else 1     # narrow elements share a lane's bits
    if isinstance(layer, Softmax):
        return softmax_cost(n, layer.cols, chip).cycles
    if isinstance(layer, LayerNorm):
        return layernorm_cost(n, layer.cols, chip).cycles
    if isinstance(layer, Pool):
        oh, ow = layer.out_hw
        return pool_cost(layer.kind_, -(-n * oh * ow // pack), layer.k * layer.k, chip).cycles
    n = -(-n // pack)
    if getattr(layer, "chain", ()):
        costs = [elementwise_cost(op, n, chip) for op in layer.chain]
        startup = chip.vector.startup_cycles
        return startup + sum(c.cycles - startup for c in costs)      # one pipeline start for the group
    return elementwise_cost(layer.op, n, chip).cycles
