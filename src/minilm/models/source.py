"""A model a user named, resolved once: where its files are, its config, its tokenizer and sentence pipeline.

`resolve_model(name)` turns `--teacher`, `--model` or a Python argument (a directory, `packaged:...`, a hub id)
into a `ModelSource`, which the command hands to whoever needs it: the tokenizer is loaded (and checked
against the model's embeddings) once, the sentence-transformers pipeline read once, and every model is
loaded from the same resolved path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from minilm.models.heads import head_of
from minilm.models.loading import load_encoder, load_model_config, load_tokenizer, resolve_model_path
from minilm.models.sentence import Pipeline, pipeline_of


@dataclass
class ModelSource:
    """name: as the user gave it (messages name it); path: what `from_pretrained` takes; config: the model's
    Hugging Face config; pipeline: how its token states become a sentence embedding."""

    name: str
    path: str
    config: Any
    pipeline: Pipeline
    _tokenizer: Any = field(default=None, repr=False)

    @property
    def tokenizer(self):
        """The model's fast tokenizer, loaded and checked on first use."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.path, shown=self.name, config=self.config)
        return self._tokenizer

    @property
    def head(self) -> str | None:
        """The task head the checkpoint was saved with (`heads.HEADS` keys), None for a bare encoder."""
        return head_of(self.config)

    def load(self, head: str | None = None, num_labels: int | None = None, **kwargs) -> nn.Module:
        """The model, bare or with `head` (`loading.load_encoder`), from the resolved path and the config held."""
        return load_encoder(self.path, num_labels=num_labels, head=head, shown=self.name, config=self.config,
                            **kwargs)


def resolve_model(name: str) -> ModelSource:
    """A `ModelSource` for a model directory, a packaged model or a hub id; one-line errors for what cannot be
    found or read."""
    path = resolve_model_path(name)
    return ModelSource(name, path, load_model_config(path, shown=name), pipeline_of(path))
