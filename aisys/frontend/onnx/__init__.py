"""aisys.onnx — real ONNX files in and out (bring your own model), see ``aisys/onnx.py``."""
from .types import ConversionError
from .importer import load, supported_operators, CONVERTERS, MIN_OPSET, MAX_OPSET
from .backend import Backend, BackendRep, run
from .exporter import export, to_model, EXPORT_OPSET, EMITTERS, NOT_EXPORTED

__all__ = ["load", "run", "Backend", "BackendRep", "ConversionError", "supported_operators", "CONVERTERS",
           "MIN_OPSET", "MAX_OPSET", "export", "to_model", "EXPORT_OPSET", "EMITTERS", "NOT_EXPORTED"]
