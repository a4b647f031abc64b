"""INT8 quantization: ONNX Runtime (dynamic / static QDQ / QOperator, accuracy-aware search) and Intel Neural
Compressor (PT2E W8A8 on PyTorch models).

Submodules import onnxruntime / neural-compressor lazily, so importing this package stays cheap.
"""

from compress.quantization.graph import strip_value_info
from compress.quantization.ort import quantize_dynamic_int8, quantize_onnx
from compress.quantization.settings import OrtQuantSettings

__all__ = ["OrtQuantSettings", "quantize_dynamic_int8", "quantize_onnx", "strip_value_info"]
