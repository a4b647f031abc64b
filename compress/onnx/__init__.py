"""PyTorch -> ONNX export and ONNX Runtime transformer fusion."""
