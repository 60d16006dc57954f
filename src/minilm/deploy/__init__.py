"""Deployment: students as ONNX graphs for onnxruntime, and inference speed as users get it.

| module | what |
|---|---|
| `onnx_export.py` | a model traced into an ONNX graph; int8 quantization |
| `onnx_model.py` | an exported directory, run with onnxruntime and called like the PyTorch model |
| `runtime.py` | loading any checkpoint for inference (ONNX or PyTorch) |
| `speed.py` | several models timed side by side on the same sentences |
"""
