"""Deployment: students as ONNX graphs for onnxruntime, int8 per target CPU, and inference speed as users get it.

| module | what |
|---|---|
| `layout.py` | the export directory: a copy of the model's directory, graphs in `onnx/`, `export.json` |
| `onnx_export.py` | a model traced into an ONNX graph (token-level, or with its sentence pooling inside) |
| `fusion.py` | onnxruntime's transformer fusions (Attention, EmbedLayerNormalization, ...) for the families they fit |
| `cpu_target.py` | the CPU an int8 graph is for (avx2, avx512_vnni, arm64), read from the running CPU |
| `quantize.py` | int8 schemes per target CPU (onnxruntime's dynamic quantization) |
| `checks.py` | every graph against the PyTorch model: largest difference, labels, spans, embedding cosine |
| `writer.py` | an export directory written: graphs traced, fused, checked, quantized |
| `onnx_model.py` | an exported graph run with onnxruntime and called like the PyTorch model |
| `runtime.py` | loading any checkpoint for inference (ONNX or PyTorch) |
| `speed.py` | several models timed side by side: batch sizes, input lengths, thread counts |
| `openvino.py` | OpenVINO IR of the graphs and NNCF's static int8 on calibration text; an IR run like an onnxruntime session |
| `serving.py` | `Embedder`: sentence embeddings from a pooled graph and the model's tokenizer alone, what a server runs |
| `serving_choice.py` | which int8 pooled graph serves fastest at batch 1 and 32 on this CPU, timed at export |
"""
