"""minilm: deep self-attention distillation (MiniLM, MiniLMv2) for BERT-family encoders."""

from minilm.losses import attention_relation_losses, output_kl, relation_kl

__all__ = ["relation_kl", "attention_relation_losses", "output_kl"]
__version__ = "0.1.0"
