"""Dynamic/static unification (动静统一): eager, traced and scripted forms of one model agree —
except the traced RNN cell on the branch its example did not take."""
import numpy as np
import pytest

import aisys
from aisys.framework.graph import interpret
from aisys.frontend import script

from .models import MLP, rnn_cell, rnn_inputs


def three_forms(fn, example, inputs):
    traced = aisys.trace(fn, *example)
    scripted = script(fn, *example)
    eager = fn(*inputs).numpy()
    return eager, interpret(traced, *inputs)[0], scripted(*inputs).numpy(), interpret(scripted.graph, *inputs)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_three_forms_agree(seed):
    model = MLP(seed=seed)
    example = [aisys.randn(4, 6)]
    x = aisys.randn(4, 6)
    eager, traced, scripted, scripted_graph = three_forms(model.forward, example, [x])
    np.testing.assert_allclose(traced, eager, rtol=1e-6)
    np.testing.assert_allclose(scripted, eager, rtol=1e-6)
    np.testing.assert_allclose(scripted_graph, eager, rtol=1e-6)


def test_rnn_cell_scripted_agrees_on_both_branches_traced_on_one():
    x, h = rnn_inputs()
    for hh, traced_ok in ((h, True), (aisys.tensor(-h.numpy()), False)):
        eager, traced, scripted, scripted_graph = three_forms(rnn_cell, [x, h], [x, hh])
        np.testing.assert_allclose(scripted, eager, rtol=1e-6)
        np.testing.assert_allclose(scripted_graph, eager, rtol=1e-6)
        assert np.allclose(traced, eager) == traced_ok
