"""aisys.onnx — bring your own model: real ``.onnx`` files in and out, checked by onnxruntime and ONNX's own tests.

    import aisys.onnx
    g = aisys.onnx.load("model.onnx")             # or a ModelProto: an ordinary Graph
    print("\\n".join(g.conversion_log)); g.opset
    aisys.onnx.export(model, (x,), "model.onnx")  # an nn.Module (traced, eval mode) or a Graph -> ModelProto
    outs = aisys.onnx.run(g, {"input": x_np})     # {output name: array}, by the interpreter
    aisys.onnx.Backend                            # onnx.backend.base.Backend: prepare(model).run(inputs)

An imported model is an ordinary ``Graph``: the passes, the memory planner and the chip's lowering work on
it unchanged. Importing ``aisys`` never imports the ``onnx`` package; importing ``aisys.onnx`` does.
The converter lives in ``aisys/frontend/onnx/`` (importer, exporter, backend, conformance).
"""
from .frontend.onnx import (Backend as _InterpreterBackend, BackendRep, ConversionError, EXPORT_OPSET, MAX_OPSET, MIN_OPSET, export, load,
                            run, supported_operators, to_model)
from .frontend.onnx import conformance, examples  # noqa: F401
from .frontend.onnx.importer import gemm_converter, gemm_ops


class Backend(_InterpreterBackend):
    """onnx.backend.base.Backend for aisys: ``prepare(model)`` imports once; ``.run(inputs)`` runs by the
    interpreter, or — with ``prepare(model, compile=True)`` — by ``aisys.compile`` (the default pass pipeline
    and fused numba kernels). The front door composes the layers: the frontend never imports the compiler."""

    @classmethod
    def prepare(cls, model, device: str = "CPU", compile: bool = False, **kwargs) -> BackendRep:
        runner = None
        if compile:
            from .compiler import compile as compile_graph

            def runner(graph):
                return compile_graph(graph).run_arrays
        return super().prepare(model, device, runner=runner, **kwargs)

__all__ = ["load", "export", "run", "Backend", "BackendRep", "ConversionError", "supported_operators", "to_model",
           "EXPORT_OPSET", "MIN_OPSET", "MAX_OPSET", "conformance", "examples", "gemm_ops", "gemm_converter"]
