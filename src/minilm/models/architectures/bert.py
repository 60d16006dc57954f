"""BERT's layout and its relatives: BERT, ELECTRA (factorised embeddings), RoBERTa / XLM-R / CamemBERT (one token
type, positions counted from the padding index)."""

from __future__ import annotations

from minilm.models.architectures.base import Family, Shape


class Bert(Family):
    """BERT: the default layout (`base.Family`)."""


class Electra(Family):
    """ELECTRA: BERT's blocks; embeddings may be narrower than the blocks (`embedding_size`), projected up by
    `embeddings_project`; no pooler."""

    name = "ELECTRA"
    model_types = ("electra",)
    shared_modules = ("embeddings_project",)

    def student_config(self, teacher_config, shape: Shape, dropout: float, teacher_layers=None):
        config = super().student_config(teacher_config, shape, dropout)
        keep_factorised_embeddings(config, teacher_config, shape.hidden)
        return config


class Roberta(Family):
    """RoBERTa, XLM-R, CamemBERT: BERT's blocks; one token type; position ids start after the padding index, so
    `max_position_embeddings` counts `padding_idx + 1` positions no token can have."""

    name = "RoBERTa"
    model_types = ("roberta", "xlm-roberta", "camembert")

    def max_positions(self, config) -> int:
        return config.max_position_embeddings - (config.pad_token_id or 0) - 1

    def takes_token_types(self, config) -> bool:
        return False


def keep_factorised_embeddings(config, teacher_config, hidden: int) -> None:
    """ELECTRA's and DeBERTa's `embedding_size`: a teacher's narrower embeddings are kept (copyable, behind a new
    projection to the student's width); embeddings as wide as the teacher's blocks follow the student's width."""
    width = getattr(teacher_config, "embedding_size", None)
    if width is not None:
        config.embedding_size = width if width < teacher_config.hidden_size else hidden
