"""int8 graphs: onnxruntime's dynamic quantization (int8 weights, activations quantized per call), one scheme per
target CPU (`deploy.cpu_target`).

Measured on the packaged all-MiniLM-L6-v2, zero-shot STS-B test Spearman x 100 (float32 82.03), on an AVX2 CPU
without VNNI (docs/deploy.md has the table): signed 8-bit weights per output channel 81.78; the same with 7-bit
weights (`reduce_range`) 81.97; unsigned weights per channel 81.82 (exact on AVX2 too, but 10-20% slower there);
weights per tensor lose more (80.27 with 7 bits). Full-range signed weights saturate AVX2's `vpmaddubsw`
(`cpu_target`); 7 bits cannot, so the AVX2 scheme keeps them, and CPUs with VNNI or ARM's dot products take the
full range. Every scheme is per output channel; none is per tensor. File names follow sentence-transformers'
(`onnx/model_qint8_avx512_vnni.onnx`, ...), with our own scheme inside.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Scheme:
    """How a graph's weights become int8 for one target CPU (`onnxruntime.quantization.quantize_dynamic`)."""

    target: str
    weight_type: str  # QInt8: signed weights (activations are unsigned, onnxruntime's dynamic default)
    per_channel: bool
    reduce_range: bool  # 7-bit weights: what AVX2 without VNNI multiplies without saturating
    why: str

    def record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "why"}


SCHEMES = {
    "avx2": Scheme("avx2", "QInt8", True, True, "7-bit weights per channel, which AVX2 without VNNI multiplies "
                   "without saturating"),
    "avx512_vnni": Scheme("avx512_vnni", "QInt8", True, False, "full-range weights per channel, which VNNI sums "
                          "exactly"),
    "arm64": Scheme("arm64", "QInt8", True, False, "full-range weights per channel, which ARM's dot products sum "
                    "exactly"),
}
# Operators an int8 graph computes in integers (the rest of the graph stays float32).
INT8_OPERATORS = ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QEmbedLayerNormalization", "QGemm")


def with_shapes(source: Path):
    """The graph with every tensor's type and shape annotated: onnx's own inference stops at onnxruntime's fused
    operators (Attention, EmbedLayerNormalization), and the quantizer needs the types; onnxruntime's symbolic
    inference knows them."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    return SymbolicShapeInference.infer_shapes(onnx.load(str(source)), auto_merge=True)


def quantize_int8(source: Path, target: Path, scheme: Scheme, fused: bool) -> None:
    """Write `source` (a float32 graph) with int8 weights to `target`, by `scheme`; `fused`: the graph holds
    onnxruntime's fused operators (their shapes are annotated first)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is for static quantization
    try:
        quantize_dynamic(with_shapes(source) if fused else str(source), str(target),
                         weight_type=getattr(QuantType, scheme.weight_type), per_channel=scheme.per_channel,
                         reduce_range=scheme.reduce_range)
    finally:
        root.setLevel(level)


def int8_operators(path: Path) -> dict[str, int]:
    """How many of each integer operator a graph holds (empty for a float32 graph)."""
    import onnx

    counts = Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)
    return {name: counts[name] for name in INT8_OPERATORS if counts[name]}
