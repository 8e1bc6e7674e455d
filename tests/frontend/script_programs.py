"""Programs for the script tests, kept in their own file so tests can name their exact lines."""
import numpy as np

import aisys

W = aisys.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 10)


def helper_scale(t):
    return t * 2.0


def helper_with_branch(t):
    if t.sum() > 0:
        return t
    return -t


def uses_unknown(x):
    y = x * 2.0
    return y + undefined_thing  # noqa: F821


def uses_listcomp(x):
    ys = [x * i for i in range(3)]
    return ys[0]


def uses_with(x):
    with aisys.no_grad():
        y = x + 1.0
    return y


def uses_break(x):
    while x.sum() < 10.0:
        x = x * 2.0
        break
    return x


def shape_mismatch(x):
    h = x @ W
    return h @ W


def branches_disagree(x):
    if x.sum() > 0:
        y = x @ W
    else:
        y = x
    return y


def one_branch_only(x):
    if x.sum() > 0:
        y = x * 2.0
    return y


def vector_predicate(x):
    if x > 0:
        x = x * 2.0
    return x


def reads_item(x):
    return x * x.sum().item()


def python_counter(x):
    n = 0
    while x.sum() < 100.0:
        x = x * 2.0
        n = n + 1
    return x


def calls_branchy_helper(x):
    return helper_with_branch(x) + 1.0


def float_of_tensor(x):
    return x * float(x.sum())


def returns_number(x):
    return 3


def static_control(x):
    y = x
    for i in range(3):
        y = y * 2.0
    if x.shape[0] == 2:
        y = y + 1.0
    else:
        y = y - 1.0
    k = 0
    while k < 2:
        y = helper_scale(y)
        k += 1
    return y


def doubling_loop(x):
    y = x
    steps = aisys.zeros(())
    while y.sum() < 50.0:
        y = y * 2.0
        steps = steps + 1.0
    return y, steps


def early_return(x):
    s = x.sum()
    if s > 0:
        return x * 2.0
    y = x - 1.0
    return y.relu()


def nested(x):
    y = x
    if x.sum() > 0:
        if x[0] > 1.0:
            y = x * 10.0
        else:
            y = x * 2.0
    else:
        y = x * 0.5
    return y


def conditional_expression(x):
    return x * 2.0 if x.mean() > 0 else x - 3.0


def annotated(x: "f32[2,3]", scale: "f32[]"):
    return (x * scale).sum(1)


def python_number_branch(x):
    if x.sum() > 0:
        y = x * 2.0
    else:
        y = 0.0
    return y


def mixed_python_values(x):
    k = 1
    if x.sum() > 0:
        k = 2
    return x * k


def python_numbers_in_conditional_expression(x):
    return x * (2.0 if x.sum() > 0 else 3.0)


def two_rnn_steps(x, h):
    h = SCRIPTED_CELL(x, h)
    h = SCRIPTED_CELL(x, h.T)
    return h


SCRIPTED_CELL = None          # set by the test to a ScriptFunction


LOG = []


def log_value(v):
    LOG.append(v)


def prints_a_value(x):
    y = x * 2.0
    print("y is", y)
    return y


def logs_through_a_helper(x):
    y = x * 2.0
    log_value(y)
    return y


def collects_in_a_list(x):
    parts = []
    for k in range(3):
        parts.append(x * float(k))
    return aisys.cat(parts, 1)


def never_ends(x):
    while x.sum() > 0.0:
        x = x + 1.0
    return x
