"""L2 — the programming interface: turning a Python program into a graph.

- :func:`trace` runs the program once on tracer tensors and records the ops it performs (exact for
  straight-line code; Python ``if``/``while`` on tensor values get baked in, with a warning).
- :func:`graph_of_tape` turns the autograd tape of an eager result into a graph (the dynamic graph).
- :func:`script` compiles the function's source (tokens → ast → semantic pass → graph); tensor-valued
  ``if``/``while`` become :func:`cond` / :func:`while_loop` ops that hold their subgraphs.
- :func:`compare_captures` runs one function's eager, traced and scripted forms on the same inputs.
"""
from .trace import trace, record_ops, Tracer, TracerWarning
from .dynamic_graph import graph_of_tape
from .control_flow import cond, while_loop, run_graph, set_max_while_iterations
from .script import script, ScriptFunction, ScriptError
from .compare import CaptureComparison, compare_captures

__all__ = ["trace", "record_ops", "Tracer", "TracerWarning", "graph_of_tape", "cond", "while_loop",
           "set_max_while_iterations", "run_graph", "script", "ScriptFunction", "ScriptError", "CaptureComparison",
           "compare_captures"]
