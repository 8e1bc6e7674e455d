"""TapePlayer built headless: moving the slider, switching mode or direction changes the drawing."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys.framework.tape import Tape, course_f
from widgets.autodiff import TapePlayer


@pytest.fixture
def player():
    return TapePlayer(course_f, 2.0, 5.0)


def test_slider_scrubs_the_reverse_sweep(player):
    assert player.slider.max == 5 and player.mode.value == "reverse"
    first = player.graph.value
    assert first.startswith("<svg") and first.count('class="node"') == 7
    assert "v̄ = 1" in first and "v̄ = 5.5" not in first           # step 0: only the output's seed is known
    player.slider.value = 3                                          # v5, v4, v3 done: sin sent −cos 5 to x2
    third = player.graph.value
    assert third != first
    assert "−0.2837" in third and 'class="edge"' in third
    assert "step 3/5: v3 = sin(v0) has v̄3 = -1; its VJP sends v̄0 += -0.2837" in player.caption.value
    player.slider.value = 5
    assert "v̄ = 5.5" in player.graph.value and "v̄ = 1.716" in player.graph.value
    assert "done: ∂v5/∂x1 = 5.5, ∂v5/∂x2 = 1.716" in player.describe_step()


def test_forward_mode_pushes_tangents(player):
    player.mode.value = "forward"
    assert player.slider.value == 0 and player.slider.max == 5 and player.play.max == 5
    assert player.seed.layout.display == ""
    player.slider.value = 5
    assert "done: ∂v5/∂x1 = 5.5" in player.describe_step()
    before = player.graph.value
    player.seed.value = 1
    assert player.graph.value != before and "∂v5/∂x2 = 1.716" in player.describe_step()
    assert "v̇ = 1.716" in player.graph.value


def test_summary_is_the_tape_as_a_table(player):
    text = player.summary()
    lines = text.splitlines()
    assert lines[0] == "TapePlayer: 2 inputs, 5 ops; reverse sweep 5 steps, forward sweep 5 steps per input"
    assert lines[1].split() == ["entry", "value", "adjoint", "tangent", "d/dx1", "tangent", "d/dx2", "reverse", "step"]
    assert lines[2].split() == ["v-1", "=", "input", "x1", "2", "5.5", "1", "0", "-"]
    assert lines[6].split() == ["v3", "=", "sin(v0)", "-0.9589", "-1", "0", "0.2837", "3"]
    assert lines[-1].startswith("view (reverse mode): step 0/5")
    assert text == TapePlayer(course_f, 2.0, 5.0).summary()          # deterministic


def test_from_a_tensor_and_from_a_tape():
    x = aisys.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    loss = (aisys.tanh(x) * x).sum()
    p = TapePlayer(loss, names=["x"])
    assert p.tape[p.tape.inputs[0]].label == "x" and p.slider.max == 3
    p.slider.value = 3
    np.testing.assert_allclose(p.reverse_state(3)[0][p.tape.inputs[0]], np.tanh(x.numpy()) + x.numpy() * (1 - np.tanh(x.numpy()) ** 2))
    t = Tape.record(course_f, 2.0, 5.0)
    assert TapePlayer(t).tape is t
    with pytest.raises(TypeError, match="expects a function, a Tape or a Tensor"):
        TapePlayer(3.0)


def test_missing_dot_shows_a_clear_message(monkeypatch):
    import graphviz

    def no_dot(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Source, "pipe", no_dot)
    p = TapePlayer(course_f, 2.0, 5.0)
    assert "<code>dot</code> program is not installed" in p.graph.value
    assert "apt-get install graphviz" in p.graph.value
    p.slider.value = 2                                                # still scrubs; the caption and table work
    assert "step 2/5" in p.caption.value and "v4 = add" in p.summary()
