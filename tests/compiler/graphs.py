"""Small hand-written graphs shared by the compiler tests (each names what it exercises)."""
import numpy as np

from aisys.framework import dtypes as dt
from aisys.framework.graph import Graph

CONV = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)


def fold_graph() -> Graph:
    """A constant chain (2·3 then neg), a too-large constant op, and an impure dropout of a constant."""
    g = Graph("fold")
    x = g.add_input("x", (2, 3))
    a = g.add_const(np.float32(2.0))
    b = g.add_const(np.float32(3.0))
    ab = g.add("mul", (a.id, b.id))
    n = g.add("neg", (ab.id,))
    y = g.add("add", (x.id, n.id))
    big = g.add_const(np.zeros((300, 300), np.float32))
    g.add("exp", (big.id,))
    d = g.add("dropout", (a.id,), {"p": 0.5, "seed": 1})
    z = g.add("mul", (y.id, d.id))
    g.set_outputs([z.id])
    return g


def simplify_graph() -> Graph:
    """One instance of most rules in the table, plus the two IEEE-guarded ones (float and int)."""
    g = Graph("simp")
    x = g.add_input("x", (2, 3))
    i = g.add_input("i", (2, 3), dt.int64)
    c0, c1, c2 = (g.add_const(np.float32(v)) for v in (0.0, 1.0, 2.0))
    a = g.add("add", (c0.id, x.id))
    m = g.add("mul", (a.id, c1.id))
    n1 = g.add("neg", (m.id,))
    n2 = g.add("neg", (n1.id,))
    p1 = g.add("permute", (n2.id,), {"dims": (1, 0)})
    p2 = g.add("permute", (p1.id,), {"dims": (1, 0)})
    r1 = g.add("reshape", (p2.id,), {"shape": (6,)})
    r2 = g.add("reshape", (r1.id,), {"shape": (3, 2)})
    ca = g.add("cast", (r2.id,), {"dtype": dt.float64})
    cb = g.add("cast", (ca.id,), {"dtype": dt.float32})
    pw = g.add("pow", (cb.id, c2.id))
    z = g.add("mul", (pw.id, c0.id))
    ss = g.add("sub", (x.id, x.id))
    iz = g.add_const(np.int64(0))
    im = g.add("mul", (i.id, iz.id))
    g.set_outputs([z.id, ss.id, im.id])
    return g


def cse_graph() -> Graph:
    """a+b and b+a, equal constants, duplicate chains, impure dropouts, array-valued attrs."""
    g = Graph("cse")
    x = g.add_input("x", (4,))
    y = g.add_input("y", (4,))
    a = g.add("add", (x.id, y.id))
    b = g.add("add", (y.id, x.id))
    ea = g.add("exp", (a.id,))
    eb = g.add("exp", (b.id,))
    c1 = g.add_const(np.float32(2.0))
    c2 = g.add_const(np.float32(2.0))
    m1 = g.add("mul", (ea.id, c1.id))
    m2 = g.add("mul", (eb.id, c2.id))
    d1 = g.add("dropout", (m1.id,), {"p": 0.5, "seed": 3})
    d2 = g.add("dropout", (m2.id,), {"p": 0.5, "seed": 3})
    k1 = g.add("index", (x.id,), {"key": (np.array([0, 2]),)})
    k2 = g.add("index", (x.id,), {"key": (np.array([0, 2]),)})
    k3 = g.add("index", (x.id,), {"key": (np.array([0, 3]),)})
    s = g.add("add", (d1.id, d2.id))
    g.set_outputs([s.id, k1.id, k2.id, k3.id])
    return g


def fuse_graph() -> Graph:
    """An epilogue (matmul+add+relu), a reduce group with internal fan-out, and chain breakers."""
    g = Graph("fuse")
    x = g.add_input("x", (8, 16))
    w = g.add_param("w", np.linspace(-1, 1, 64, dtype=np.float32).reshape(16, 4))
    b = g.add_param("b", np.array([0.5, -0.5, 0.25, 0.0], np.float32))
    mm = g.add("matmul", (x.id, w.id))
    ad = g.add("add", (mm.id, b.id))
    r = g.add("relu", (ad.id,))
    e = g.add("exp", (x.id,))
    t = g.add("tanh", (e.id,))
    n2 = g.add("neg", (e.id,))
    q = g.add("mul", (t.id, n2.id))
    sm = g.add("sum", (q.id,), {"dim": 1, "keepdim": False})
    sq = g.add("sqrt", (g.add("abs", (sm.id,)).id,))
    sf = g.add("softmax", (x.id,), {"dim": 1})
    sg = g.add("sigmoid", (sf.id,))
    rs = g.add("reshape", (sg.id,), {"shape": (128,)})
    ng = g.add("neg", (rs.id,))
    g.set_outputs([r.id, sq.id, ng.id])
    return g


def residual_block(seed: int = 0, with_bias: bool = False) -> Graph:
    """conv-bn-relu-conv-bn + x, relu: the lab's ResNet basic block (eval mode, params for every weight)."""
    rng = np.random.default_rng(seed)
    g = Graph("resblock")
    x = g.add_input("x", (1, 4, 5, 5))

    def conv_bn(h, k):
        w = g.add_param(f"conv{k}.weight", (rng.standard_normal((4, 4, 3, 3)) * 0.2).astype(np.float32))
        ins = [h, w.id]
        if with_bias:
            ins.append(g.add_param(f"conv{k}.bias", rng.uniform(-1, 1, 4).astype(np.float32)).id)
        c = g.add("conv2d", ins, CONV)
        st = [g.add_param(f"bn{k}.{n}", v.astype(np.float32)).id for n, v in (
            ("running_mean", rng.uniform(-1, 1, 4)), ("running_var", rng.uniform(0.5, 2, 4)),
            ("weight", rng.uniform(0.5, 1.5, 4)), ("bias", rng.uniform(-1, 1, 4)))]
        return g.add("batch_norm", [c.id] + st, {"eps": 1e-5}).id

    h = g.add("relu", (conv_bn(x.id, 1),)).id
    y = conv_bn(h, 2)
    s = g.add("add", (y, x.id)).id
    o = g.add("relu", (s,)).id
    g.set_outputs([o])
    return g
