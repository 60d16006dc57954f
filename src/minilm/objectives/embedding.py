"""`embedding`: the student's sentence embedding against the teacher's, as sentence-transformers distils.

    e = pipeline(H_last, mask)             the teacher's own pooling over real tokens (its sentence-transformers
                                           configuration; mean pooling for a plain encoder), then L2
                                           normalisation when the teacher normalises (`models.sentence.embed`)
    L_emb = MSE(e_S W, e_T)                mean over the batch and the embedding's dimensions (as
                                           sentence-transformers' MSELoss; Reimers & Gurevych 2020), or
    L_emb = 1 - cos(e_S W, e_T)            mean over the batch (`--embedding-loss cosine`)

W maps the student's pooled width to the teacher's when they differ (a training-only Linear, saved with the
student as a sentence-transformers Dense module, so that its embeddings live in the teacher's space), else
none. With normalised embeddings MSE = (1 - cos) * 2 / width: the two differ by a constant factor. Combined
with MiniLM's relation losses through `--objective minilm embedding` (`objectives.Combined`).
"""

from __future__ import annotations

from torch import nn

from minilm.config.sections import EmbeddingLoss
from minilm.losses.embedding import embedding_cosine, embedding_mse
from minilm.models.sentence import Pipeline, embed
from minilm.objectives.views import pooler_parameters


class Embedding:
    """Reads the last hidden states of both models (`needs`), pools them into sentence embeddings (`read`)."""

    name = "embedding"

    def __init__(self, cfg: EmbeddingLoss, teacher, student, pipeline: Pipeline | None = None, full: bool = False):
        self.pipeline = pipeline or Pipeline()  # a model built in memory: mean pooling
        self.pipeline.check_computable(getattr(teacher, "name_or_path", "") or "the teacher")
        self.loss = embedding_mse if cfg.embedding_loss == "mse" else embedding_cosine
        modes = len(self.pipeline.pooling)
        t_width, s_width = teacher.config.hidden_size * modes, student.config.hidden_size * modes
        self.projection = nn.Linear(s_width, t_width) if s_width != t_width else None
        self.unused = [] if full else pooler_parameters(student)  # no embedding reads it
        self.needs = {"teacher": {"hidden": True}, "student": {"hidden": True}}
        self.trainable = self.projection  # training-only parameters of the student side
        self.notes = [f"embedding objective: {'+'.join(self.pipeline.pooling)} pooling"
                      + (", normalised" if self.pipeline.normalize else "")
                      + (f", a {s_width} -> {t_width} projection" if self.projection is not None else "")]

    def read(self, features: dict, attention_mask, side: str):
        projection = self.projection if side == "student" else None
        return embed(features["hidden"][-1], attention_mask, self.pipeline, projection)

    def losses(self, teacher, student, batch: dict) -> dict:
        return {"embedding": self.loss(student, teacher)}

    def dense(self) -> nn.Linear | None:
        """What the student needs at inference beyond its encoder: the projection, when there is one."""
        return self.projection
