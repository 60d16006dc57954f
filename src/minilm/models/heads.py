"""Task heads of Hugging Face models: which head a checkpoint carries, its scores, and masked-LM heads.

`HEADS` names the Auto classes this tool loads (`loading.load_encoder`); `head_of` reads a checkpoint's head
from the class names transformers records in `architectures` (the only record it keeps).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from minilm.errors import require

HEADS = {None: "AutoModel", "classification": "AutoModelForSequenceClassification",
         "question-answering": "AutoModelForQuestionAnswering", "masked-lm": "AutoModelForMaskedLM"}


# The head a checkpoint was saved with, from the class names that Hugging Face records in `architectures`
# (the only record it keeps): the one place that reads them.
_ARCHITECTURE_HEADS = (("ForQuestionAnswering", "question-answering"), ("ForSequenceClassification", "classification"),
                       ("ForMaskedLM", "masked-lm"), ("ForPreTraining", "masked-lm"))


def head_of(config) -> str | None:
    """The head (a `HEADS` key) of a checkpoint's config: None for a bare encoder."""
    names = " ".join(config.architectures or [])
    return next((head for suffix, head in _ARCHITECTURE_HEADS if suffix in names), None)


def has_masked_lm(model: nn.Module) -> bool:
    """Whether a loaded model carries a masked-LM head (loaded with `head="masked-lm"`): Hugging Face models
    with a vocabulary projection return it as their output embeddings, encoders and classifiers None."""
    return model is not model.base_model and model.get_output_embeddings() is not None


def masked_lm_head(model: nn.Module) -> nn.Module:
    """The head of a masked-LM model (BERT's `cls`, RoBERTa's `lm_head`): hidden states -> vocabulary logits."""
    heads = [m for name, m in model.named_children() if name != model.base_model_prefix]
    require(len(heads) == 1, f"{type(model).__name__} has no single masked-LM head")
    return heads[0]


def new_masked_lm_head(encoder: nn.Module) -> nn.Module:
    """A masked-LM head for `encoder` (its architecture's own), decoder tied to the encoder's word embeddings."""
    from transformers import AutoModelForMaskedLM

    config = copy.deepcopy(encoder.config)
    config.num_hidden_layers = 1  # only the head is kept: no need to build the whole stack
    head = masked_lm_head(AutoModelForMaskedLM.from_config(config))
    decoders = [m for m in head.modules() if isinstance(m, nn.Linear) and m.out_features == config.vocab_size]
    require(len(decoders) == 1, f"cannot find the vocabulary projection of {type(head).__name__}")
    decoders[0].weight = encoder.get_input_embeddings().weight
    return head


def task_logits(outputs) -> torch.Tensor | None:
    """A task head's scores from a Hugging Face output: classifier logits (batch, classes), or a
    question-answering head's start and end scores stacked as (batch, seq, 2)."""
    if getattr(outputs, "start_logits", None) is not None:
        return torch.stack([outputs.start_logits, outputs.end_logits], dim=-1)
    return getattr(outputs, "logits", None)
