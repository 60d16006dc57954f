"""Losses: pure functions of tensors and a mask, each docstring stating shapes, masking, normalisation and
the paper's equation.

| module | what |
|---|---|
| `relations.py` | the relations by name: (Q, K), (V, V); MiniLMv2's Q-Q, K-K, V-V |
| `chunked_kl.py` | MiniLM's self-attention relation KL (`relation_kl`: L_AT, L_VR; MiniLMv2's Q-Q, K-K, V-V), chunked in PyTorch |
| `triton_kl.py` | the same KL as fused Triton kernels for CUDA (no seq x seq map is written) |
| `output.py` | L_OUT of task-specific distillation (classifiers, extractive QA) and the QA span loss |
| `embedding.py` | sentence-embedding MSE and cosine |
| `tokens.py` | token-state MSE over real tokens |

The functions below are served lazily (`from minilm.losses import output_kl` imports `output.py` then): the settings
read `relations.py`, and reading them must not import torch. No function shares its name with a module here:
`from minilm.losses import relation_kl` is the function (as `minilm.relation_kl` is).
"""

from __future__ import annotations

import importlib

_MODULE_OF = {"relation_kl": "chunked_kl", "attention_relation_losses": "chunked_kl", "resolve_kernel": "chunked_kl",
              "V1_RELATIONS": "relations",
              "V2_RELATIONS": "relations", "output_kl": "output", "span_kl": "output", "span_loss": "output",
              "embedding_mse": "embedding", "embedding_cosine": "embedding", "token_mse": "tokens"}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"minilm.losses.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'minilm.losses' has no attribute '{name}'")
