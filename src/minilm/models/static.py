"""Static students: one vector per token of the teacher's vocabulary, a sentence the mean of its tokens' vectors.

The fastest a student can be: no layer runs, a sentence embedding is a lookup and a mean (sentence-transformers'
`StaticEmbedding`, Model2Vec's static models). `StaticModel` is that model as a Hugging Face model (config
`model_type` "minilm-static", registered with transformers' Auto classes) so that it trains, checkpoints and
exports as any student does:

    e(x) = mean over the real tokens t of x that are not special tokens of  E[t]        (its `pooler_output`)

and its `last_hidden_state` is E[t] per token (zeros at special tokens). It is saved in the sentence-transformers
layout as a `StaticEmbedding` module at the directory's root (`embedding.weight`, `tokenizer.json`), which
tokenizes without special tokens: the same mean (`tests/models/test_static.py`).

Its start (`static_start`), Model2Vec's idea done our way: each token's vector is the teacher's own sentence
embedding of that token alone (`[CLS] t [SEP]` through the teacher and its pooling), reduced to the student's width
by PCA (`sklearn`), and weighted by smooth inverse frequency on the run's own text (Arora et al. 2017,
w(t) = a / (a + p(t)), p the token's share of the text's tokens), so that frequent tokens weigh little in a mean.
Distillation then trains the vectors on the teacher's sentence embeddings of the run's text (as tokenlearn does).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

MODEL_TYPE = "minilm-static"
SIF_COEFFICIENT = 1e-3  # a in a / (a + p(t)): tokens much rarer than 1 in 1,000 keep almost their whole weight
START_BATCH = 512


class StaticConfig(PretrainedConfig):
    """A static student: `vocab_size` vectors of `hidden_size`; `special_ids` are left out of every mean."""

    model_type = MODEL_TYPE

    def __init__(self, vocab_size: int = 30522, hidden_size: int = 256, special_ids: list[int] | None = None,
                 pad_token_id: int = 0, **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.special_ids = list(special_ids or [])
        self.num_hidden_layers = 0


class StaticModel(PreTrainedModel):
    """forward(input_ids, attention_mask) -> last_hidden_state (batch, seq, width): each token's vector, zeros at
    padding and special tokens; pooler_output (batch, width): their mean over the real, non-special tokens (the
    sentence embedding before any normalisation, `architectures.static` pools the same way)."""

    config_class = StaticConfig
    base_model_prefix = "static"
    _no_split_modules = []

    def __init__(self, config: StaticConfig):
        super().__init__(config)
        self.embedding = nn.EmbeddingBag(config.vocab_size, config.hidden_size, mode="mean")  # StaticEmbedding's name
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.EmbeddingBag):
            nn.init.normal_(module.weight, std=0.02)

    def get_input_embeddings(self):
        return self.embedding

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states=None, **kwargs):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        # from the config at each call: a buffer made in __init__ is not restored when transformers loads the model;
        # compared one by one, since torch.isin exports as searchsorted, which ONNX lacks
        special = torch.tensor(self.config.special_ids or [-1], dtype=input_ids.dtype, device=input_ids.device)
        keep = (mask.bool() & ~(input_ids[..., None] == special).any(-1)).to(self.embedding.weight.dtype)[..., None]
        tokens = nn.functional.embedding(input_ids, self.embedding.weight) * keep
        pooled = tokens.sum(1) / keep.sum(1).clamp(min=1.0)
        return BaseModelOutputWithPooling(last_hidden_state=tokens, pooler_output=pooled,
                                          hidden_states=(tokens,) if output_hidden_states else None)


AutoConfig.register(MODEL_TYPE, StaticConfig)
AutoModel.register(StaticConfig, StaticModel)


def static_config(teacher_config, tokenizer, width: int) -> StaticConfig:
    return StaticConfig(vocab_size=teacher_config.vocab_size, hidden_size=width,
                        special_ids=sorted(set(tokenizer.all_special_ids)), pad_token_id=tokenizer.pad_token_id or 0)


@torch.inference_mode()
def token_outputs(teacher, tokenizer, embed, device=None, progress: bool = False) -> np.ndarray:
    """(vocabulary, teacher width) float32: each token's sentence embedding as the teacher gives it for the token
    alone (`[CLS] t [SEP]`), `embed(hidden, mask)` its own pooling and normalisation (`models.sentence.embed`)."""
    from tqdm import tqdm

    from minilm.models.architectures import inputs_for

    device = device or next(teacher.parameters()).device
    vocab = teacher.config.vocab_size
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows = []
    for start in tqdm(range(0, vocab, START_BATCH), desc="teacher token outputs", disable=not progress):
        ids = torch.arange(start, min(vocab, start + START_BATCH))[:, None]
        parts = ([torch.full_like(ids, cls)] if cls is not None else []) + [ids] + \
            ([torch.full_like(ids, sep)] if sep is not None else [])
        batch = {"input_ids": torch.cat(parts, 1).to(device)}
        batch["attention_mask"] = torch.ones_like(batch["input_ids"])
        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        hidden = teacher.base_model(**inputs_for(teacher, batch)).last_hidden_state
        rows.append(embed(hidden, batch["attention_mask"]).float().cpu().numpy())
    return np.concatenate(rows)


def static_start(outputs: np.ndarray, width: int, counts: np.ndarray | None, special_ids: list[int],
                 coefficient: float = SIF_COEFFICIENT) -> tuple[np.ndarray, dict]:
    """The start of a static student of `width` from the teacher's per-token outputs: PCA to `width` (fit on the
    ordinary tokens; when `width` is the teacher's, a rotation), each vector weighted by a / (a + p(t)) with p from
    `counts` (token counts of the run's text; None: no weighting). Returns the vectors and what was done."""
    from sklearn.decomposition import PCA

    ordinary = np.setdiff1d(np.arange(len(outputs)), special_ids)
    pca = PCA(n_components=width, svd_solver="full", random_state=0).fit(outputs[ordinary].astype(np.float64))
    vectors = pca.transform(outputs.astype(np.float64))
    weights = np.ones(len(outputs))
    if counts is not None and counts.sum() > 0:
        share = counts / counts.sum()
        weights = coefficient / (coefficient + share)
    vectors = vectors * weights[:, None]
    record = {"pca_width": width, "pca_explained": float(pca.explained_variance_ratio_.sum()),
              "sif_coefficient": coefficient if counts is not None else None}
    return vectors.astype(np.float32), record


def token_counts(examples, vocab_size: int) -> np.ndarray:
    """How often each token occurs in the examples (a token cache, or any indexable of token rows)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    tokens = getattr(examples, "tokens", None)
    if tokens is not None:  # a token cache: its flat token array
        return np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size)[:vocab_size]
    for i in range(len(examples)):
        item = examples[i]
        ids = np.asarray(item["input_ids"] if isinstance(item, dict) else item, dtype=np.int64)
        counts += np.bincount(ids, minlength=vocab_size)[:vocab_size]
    return counts
