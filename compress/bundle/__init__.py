"""The deployable bundle: INT8 ONNX model (or an OpenVINO IR) + tokenizer + manifest, runnable without torch."""
