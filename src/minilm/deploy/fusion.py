"""Fused graphs: onnxruntime's transformer optimizer rewrites a traced BERT-like graph into its fused operators
(EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu/Gelu), fewer and faster nodes.

It recognises the graph the TorchScript exporter writes of the eager attention code (`onnx_export`, exporter
"torchscript"); the dynamo exporter's graph never gets Attention or EmbedLayerNormalization. The attention mask
is kept as the raw 2-D 0/1 mask (`use_raw_attention_mask`): the default, a 1-D index of each row's end, gives wrong
outputs for left padding. Families whose fused graph matched PyTorch on tiny models with right and left padding
(tests/deploy/test_fusion.py): BERT, ELECTRA, RoBERTa (XLM-R, CamemBERT: its positions count from the mask, so its
embeddings stay unfused) and DistilBERT; the others (MPNet's relative bias, DeBERTa's, ModernBERT's rotary
attention) are written plain. A fused graph is checked against PyTorch like any other (`checks`), and the export
falls back to the plain graph when it differs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from minilm.models.architectures import family_of

FUSED_FAMILIES = ("BERT", "ELECTRA", "RoBERTa", "DistilBERT")  # `Family.name`s
# What the fusion counts (`optimize_model`'s statistics, the operators it made).
FUSED_OPERATORS = ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "LayerNormalization",
                   "BiasGelu", "Gelu", "FastGelu")


def fuses(config) -> bool:
    """Whether the model's family is one whose graph onnxruntime's optimizer fuses (`FUSED_FAMILIES`)."""
    return family_of(config).name in FUSED_FAMILIES


def fuse(source: Path, target: Path, config) -> dict[str, int]:
    """Write `source` (a TorchScript-traced float32 graph) fused to `target`; returns how many of each fused
    operator it holds. Raises when the optimizer fused no attention at all (nothing gained: write the plain graph)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    shape = family_of(config).shape(config)
    options = FusionOptions("bert")
    options.use_raw_attention_mask(True)
    quiet = [logging.getLogger(name) for name in ("onnxruntime.transformers", "fusion", "onnx_model")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        optimized = optimize_model(str(source), model_type="bert", num_heads=shape.heads, hidden_size=shape.hidden,
                                   optimization_options=options, opt_level=0)
        counts = {name: int(n) for name, n in optimized.get_fused_operator_statistics().items()
                  if name in FUSED_OPERATORS and n}
        if not counts.get("Attention"):
            raise RuntimeError(f"onnxruntime's optimizer fused no attention in this {family_of(config).name} graph")
        optimized.save_model_to_file(str(target))
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    return counts
