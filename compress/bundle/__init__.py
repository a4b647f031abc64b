"""The deployable bundle: INT8 ONNX model + tokenizer + manifest, runnable without torch."""
