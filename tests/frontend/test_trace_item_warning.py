"""Tracing warns when a tensor becomes a Python number (its value is then baked into the graph)."""
import aisys


def test_item_inside_a_traced_function_is_reported_as_baked():
    def f(x):
        scale = (x.sum() * 0.0 + 2.0).item()       # a Python float: the graph can only keep 2.0
        return x * scale

    g = aisys.trace(f, aisys.ones(3))
    assert any("value baked" in w and "test_trace_item_warning.py" in w for w in g.warnings), g.warnings
    assert aisys.graph.interpret(g, aisys.ones(3).numpy())[0].tolist() == [2.0, 2.0, 2.0]


def test_item_on_a_constant_is_not_reported():
    def f(x):
        return x * aisys.tensor(3.0).item()       # made from Python numbers: baking it is exact

    g = aisys.trace(f, aisys.ones(2))
    assert not any("value baked" in w for w in g.warnings)


def test_escapes_to_python_and_numpy_warn_with_a_tracer_warning_naming_the_line():
    import numpy as np
    import pytest
    from aisys.frontend import TracerWarning
    for escape in (lambda x: aisys.tensor(np.sin(x.numpy())) * x,     # numpy round trip: a constant
                   lambda x: x * (x.sum() * 0.0 + 2.0).item(),
                   lambda x: x * aisys.tensor(x.tolist())):
        with pytest.warns(TracerWarning, match="value baked: ") as record:
            aisys.trace(escape, aisys.ones(3))
        assert record[0].filename.endswith("test_trace_item_warning.py")         # the warning points at the line


def test_data_dependent_if_warns_with_a_tracer_warning():
    import pytest
    from aisys.frontend import TracerWarning

    def f(x):
        if x.sum() > 0:
            return x * 2.0
        return x
    with pytest.warns(TracerWarning, match="branch baked"):
        g = aisys.trace(f, aisys.ones(2))
    assert g.warnings and "branch baked" in g.warnings[0]
