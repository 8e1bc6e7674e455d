"""Properties over random programs: trace, script and eager agree (hypothesis, derandomized)."""
import numpy as np
from hypothesis import given, settings, strategies as st

import aisys
from aisys.framework.graph import interpret
from aisys.frontend import script

from . import random_program as RP

STEPS = st.lists(st.sampled_from(sorted(RP.STEP_FUNCTIONS)), min_size=1, max_size=5)
SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 4))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(steps=STEPS, shape=SHAPES, seed=st.integers(0, 2**16))
def test_straight_line_programs_three_forms_agree(steps, shape, seed):
    RP.CHAIN[:] = [RP.STEP_FUNCTIONS[s] for s in steps]
    rng = np.random.default_rng(seed)
    example, x = (aisys.tensor(rng.standard_normal(shape).astype(np.float32)) for _ in range(2))
    eager = RP.chain(x).numpy()
    np.testing.assert_allclose(interpret(aisys.trace(RP.chain, example), x)[0], eager, rtol=1e-5, atol=1e-6)
    sf = script(RP.chain, example)
    assert sf.graph.count_ops() == aisys.trace(RP.chain, example).count_ops()    # the loop unrolled the same
    np.testing.assert_allclose(interpret(sf.graph, x)[0], eager, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(then_steps=STEPS, else_steps=STEPS, seed=st.integers(0, 2**16))
def test_branching_programs_scripted_agrees_for_every_input(then_steps, else_steps, seed):
    RP.THEN[:] = [RP.STEP_FUNCTIONS[s] for s in then_steps]
    RP.ELSE[:] = [RP.STEP_FUNCTIONS[s] for s in else_steps]
    rng = np.random.default_rng(seed)
    sf = script(RP.branching, aisys.ones(2, 3))
    assert sf.graph.count_ops().get("cond") == 1
    for _ in range(3):
        x = aisys.tensor(rng.standard_normal((2, 3)).astype(np.float32))
        np.testing.assert_allclose(interpret(sf.graph, x)[0], RP.branching(x).numpy(), rtol=1e-5, atol=1e-6)
