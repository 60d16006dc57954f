"""Tiny random models (vocabulary 30,522: the packaged teacher's real tokenizer fits them)."""

from __future__ import annotations

import torch


def tiny_bert(layers=2, hidden=32, heads=4, ffn=64, attn="eager", num_labels=None, seed=0, init_range=0.02):
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=128, attn_implementation=attn,
                        initializer_range=init_range)
    if num_labels is None:
        return BertModel(config)
    config.num_labels = num_labels
    return BertForSequenceClassification(config)


def mlm_teacher(seed=3):
    """A tiny BertForMaskedLM: distilbert's masked-LM terms run with it."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    return BertForMaskedLM(config).eval()
