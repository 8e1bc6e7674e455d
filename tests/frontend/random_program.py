"""Building blocks for random programs (the property tests choose the chains)."""
import aisys

STEP_FUNCTIONS = {
    "tanh": lambda y: y.tanh(),
    "relu": lambda y: y.relu(),
    "affine": lambda y: y * 2.0 + 1.0,
    "sin": lambda y: y.sin(),
    "abs": lambda y: y.abs(),
    "center": lambda y: y - y.mean(-1, keepdim=True),
    "softmax": lambda y: y.softmax(-1),
    "square": lambda y: y * y,
    "sigmoid": lambda y: aisys.sigmoid(y),
    "transpose2": lambda y: y.T.T,
}
CHAIN: list = []
THEN: list = []
ELSE: list = []


def chain(x):
    y = x
    for f in CHAIN:
        y = f(y)
    return y


def branching(x):
    y = x
    if x.sum() > 0:
        for f in THEN:
            y = f(y)
    else:
        for f in ELSE:
            y = f(y)
    return y
