"""Losses: pure functions of tensors and a mask, each docstring stating shapes, masking, normalisation and
the paper's equation.

| module | what |
|---|---|
| `relations.py` | the relations by name: (Q, K), (V, V); MiniLMv2's Q-Q, K-K, V-V |
| `relation_kl.py` | MiniLM's self-attention relation KL (L_AT, L_VR; MiniLMv2's Q-Q, K-K, V-V), chunked in PyTorch |
| `relation_kl_triton.py` | the same KL as fused Triton kernels for CUDA (no seq x seq map is written) |
| `output.py` | L_OUT of task-specific distillation (classifiers, extractive QA) and the QA span loss |
| `embedding.py` | sentence-embedding MSE and cosine |
| `tokens.py` | token-state MSE over real tokens |
"""

from minilm.losses.embedding import embedding_cosine, embedding_mse
from minilm.losses.output import output_kl, span_kl, span_loss
from minilm.losses.relation_kl import attention_relation_losses, relation_kl, resolve_kernel
from minilm.losses.relations import V1_RELATIONS, V2_RELATIONS
from minilm.losses.tokens import token_mse

__all__ = ["relation_kl", "attention_relation_losses", "resolve_kernel", "V1_RELATIONS", "V2_RELATIONS", "output_kl",
           "span_kl", "span_loss", "embedding_mse", "embedding_cosine", "token_mse"]
