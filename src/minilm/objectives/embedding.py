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
with MiniLM's relation losses through `--objective minilm embedding` (`objectives.combined`). The teacher's
embedding of each example is kept on disk (`--teacher-cache`, `objectives.teacher_cache`): then the teacher need not
run while the student trains, and a student alone on this objective may have a tokenizer of its own (a smaller
sentence-transformers model to start from, `--student-init`: the teacher reads the same text through its own).

W starts where the student's own coordinates are carried into the teacher's: for a student pruned from this
teacher (its plan, `models.plan`) at its kept channels (`start_at_selection`), else, with the teacher's embeddings
kept, at the least-squares map of the student's embeddings onto them (`fit_projection`), else at random.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from minilm.losses.embedding import embedding_cosine, embedding_mse
from minilm.models.architectures import family_of
from minilm.models.sentence import Pipeline, embed, pool
from minilm.objectives.base import Needs, ObjectiveSettings, SharedObjective, objective
from minilm.objectives.views import pooler_parameters


@objective("embedding")
class Embedding(SharedObjective):
    """Reads the last hidden states of both models (`needs`), pools them into sentence embeddings (`read`)."""

    def __init__(self, settings: ObjectiveSettings, teacher, student):
        self.pipeline = settings.pipeline or Pipeline()  # a model built in memory: mean pooling
        self.pipeline.check_computable(getattr(teacher, "name_or_path", "") or "the teacher")
        self.loss = embedding_mse if settings.embedding.embedding_loss == "mse" else embedding_cosine
        # the student pools as its family does (a static student takes the mean of its tokens, whatever the teacher)
        self.student_pooling = family_of(student).own_pooling(self.pipeline.pooling)
        modes, s_modes = len(self.pipeline.pooling), len(self.student_pooling)
        t_hidden, s_hidden = (family_of(m).shape(getattr(m, "config", m)).hidden for m in (teacher, student))
        s_width, t_width = s_hidden * s_modes, t_hidden * modes
        self.projection = nn.Linear(s_width, t_width) if s_width != t_width else None
        kept = None
        if settings.plan is not None and settings.teacher_id is not None:
            kept = settings.plan.channels_in(settings.teacher_id)  # a student pruned from this very teacher
        if self.projection is not None and kept is not None:
            start_at_selection(self.projection, kept, s_hidden, t_hidden, modes)
        self.at_selection = self.projection is not None and kept is not None
        self.unused = [] if settings.full else pooler_parameters(student)  # no embedding reads it
        self.needs = {"teacher": Needs(hidden=True), "student": Needs(hidden=True)}
        self.trainable = self.projection  # training-only parameters of the student side
        self.notes = [f"embedding objective: {'+'.join(self.pipeline.pooling)} pooling"
                      + (", normalised" if self.pipeline.normalize else "")
                      + (f", a {s_width} -> {t_width} projection" if self.projection else "")
                      + (" starting at the pruned channels' places" if self.at_selection else "")]

    def read(self, features: dict, attention_mask, side: str):
        if side == "teacher":
            return embed(features["hidden"][-1], attention_mask, self.pipeline)
        pipeline = replace(self.pipeline, pooling=self.student_pooling)
        return embed(features["hidden"][-1], features["pooling_mask"], pipeline, self.projection)

    def teacher_key(self) -> dict:
        return {"name": self.name, "pipeline": repr(self.pipeline)}

    def teacher_fields(self) -> dict[str, str]:
        return {"embedding": "vector"}

    def pack(self, reading) -> dict:
        return {"embedding": reading}

    def unpack(self, fields: dict):
        return fields["embedding"]

    def losses(self, teacher, student, batch: dict) -> dict:
        return {"embedding": self.loss(student, teacher)}

    def dense(self) -> nn.Linear | None:
        """What the student needs at inference beyond its encoder: the projection, when there is one."""
        return self.projection

    def warm_start(self, student, examples, pad_id: int, device, kept=None) -> list[str]:
        """Without a start at the kept channels, the projection (when the widths differ) starts at the least-squares
        map onto the teacher's kept embeddings."""
        if self.projection is None or self.at_selection or kept is None:
            return []
        cosine = fit_projection(self.projection, student, self.student_pooling, examples, pad_id, device,
                                lambda batch: kept(batch)["embedding"])
        return [f"embedding objective: the projection starts at the least-squares map of the student's embeddings "
                f"onto the teacher's (cosine {cosine:.3f} on a sample)"]


def start_at_selection(projection: nn.Linear, kept, s_hidden: int, t_hidden: int, modes: int) -> None:
    """A pruned student's channel c is the teacher's channel kept[c]: the projection starts by putting each back
    in its place (zeros elsewhere, no bias), so that the loss starts from the teacher's own coordinates instead of
    a random map, whose gradients pull the student's own embedding away from the teacher's (measured on a 3x256
    student of all-MiniLM-L6-v2: 67.08 on STS-B test after 300 steps from a random projection, against 69.21
    before training)."""
    with torch.no_grad():
        projection.weight.zero_()
        projection.bias.zero_()
        for m in range(modes):
            rows = torch.as_tensor(kept, dtype=torch.long) + m * t_hidden
            projection.weight[rows, torch.arange(s_hidden) + m * s_hidden] = 1.0


@torch.no_grad()
def fit_projection(projection: nn.Linear, student, pooling: tuple[str, ...], examples, pad_id: int, device,
                   teacher_embedding, sample: int = 2048, batch_size: int = 64, ridge: float = 1e-3) -> float:
    """Start the projection W (student width -> teacher width) at the least-squares map from the student's pooled
    embeddings to the teacher's kept ones (`teacher_embedding(batch)`) on up to `sample` examples (ridge-regularised),
    instead of at random:
    the student then begins from its own embeddings carried into the teacher's space, not from noise. Returns the
    mean cosine of the mapped, normalised embeddings to the teacher's on the sample."""
    from minilm.data.batches import pad_batch
    from minilm.models.architectures import inputs_for

    rows = np.random.default_rng(0).permutation(len(examples))[:sample]
    was_training = student.training
    student.eval()
    pooled, targets = [], []
    for start in range(0, len(rows), batch_size):
        items = [examples[int(i)] for i in rows[start:start + batch_size]]
        batch = {k: v.to(device) for k, v in pad_batch(items, pad_id).items()}
        hidden = student.base_model(**inputs_for(student, batch)).last_hidden_state
        mask = family_of(student).pooling_mask(student.config, batch["input_ids"], batch["attention_mask"])
        pooled.append(pool(hidden, mask, pooling).double().cpu())
        targets.append(teacher_embedding(batch).double().cpu())
    student.train(was_training)
    x, y = torch.cat(pooled), torch.cat(targets)
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=x.dtype) * xc.pow(2).sum() / x.shape[1]
    weight = torch.linalg.solve(gram, xc.T @ yc)  # (student width, teacher width)
    projection.weight.copy_(weight.T.to(projection.weight.dtype))
    projection.bias.copy_((y_mean - x_mean @ weight).to(projection.bias.dtype))
    mapped = torch.nn.functional.normalize(x @ weight + (y_mean - x_mean @ weight), dim=-1)
    return float(torch.nn.functional.cosine_similarity(mapped, y, dim=-1).mean())
