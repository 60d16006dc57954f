"""Static students (`models.static`): no layers, no attention; a sentence embedding is the mean of the vectors of
its real tokens that are not special tokens (`pooling_mask`), whatever its teacher pools by (`own_pooling`), as
sentence-transformers' `StaticEmbedding` computes it. Attention objectives have nothing to read of it (`layers` is
empty)."""

from __future__ import annotations

import torch
from torch import nn

from minilm.models.architectures.base import Family, Shape

NO_POSITION_LIMIT = 1 << 30  # a lookup takes any length


class Static(Family):
    name = "static"
    model_types = ("minilm-static",)
    supports_sdpa = False
    attention_interface = False
    shared_modules = ()
    sentence_module = "StaticEmbedding"

    def layers(self, model) -> nn.ModuleList:
        return nn.ModuleList()

    def shape(self, config) -> Shape:
        return Shape(0, config.hidden_size, 0, 0)

    def with_shape(self, config, shape: Shape):
        import copy

        config = copy.deepcopy(config)
        config.hidden_size = shape.hidden
        return config

    def head_size(self, config) -> int:
        return config.hidden_size

    def max_positions(self, config) -> int:
        return NO_POSITION_LIMIT

    def takes_token_types(self, config) -> bool:
        return False

    def pooling_mask(self, config, input_ids, attention_mask):
        special = torch.tensor(config.special_ids or [-1], dtype=input_ids.dtype, device=input_ids.device)
        return attention_mask * ~(input_ids[..., None] == special).any(-1)

    def own_pooling(self, modes):
        return ("mean",)

    def block_linears(self):
        return {}
