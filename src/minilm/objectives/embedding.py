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
with MiniLM's relation losses through `--objective minilm embedding` (`objectives.combined`). Alone, the teacher's
embeddings can be computed once for the corpus (`CachedEmbedding`, `--embedding-cache`): then the student may have
a tokenizer of its own (a smaller sentence-transformers model to start from, `--student-init`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from minilm.config.sections import EmbeddingLoss
from minilm.losses.embedding import embedding_cosine, embedding_mse
from minilm.models.sentence import Pipeline, embed, pool
from minilm.objectives.base import DistillationObjective, ObjectiveSettings
from minilm.objectives.views import pooler_parameters


class Embedding(DistillationObjective):
    """Reads the last hidden states of both models (`needs`), pools them into sentence embeddings (`read`)."""

    name = "embedding"

    @classmethod
    def build(cls, settings: ObjectiveSettings, teacher, student) -> "Embedding":
        return cls(settings.embedding, teacher, student, settings.pipeline, settings.full)

    def __init__(self, cfg: EmbeddingLoss, teacher, student, pipeline: Pipeline | None = None, full: bool = False):
        self.pipeline = pipeline or Pipeline()  # a model built in memory: mean pooling
        self.pipeline.check_computable(getattr(teacher, "name_or_path", "") or "the teacher")
        self.loss = embedding_mse if cfg.embedding_loss == "mse" else embedding_cosine
        modes = len(self.pipeline.pooling)
        t_width = getattr(teacher, "config", teacher).hidden_size * modes  # a model, or its config
        s_width = student.config.hidden_size * modes
        self.projection = nn.Linear(s_width, t_width) if s_width != t_width else None
        kept = getattr(student, "pruned_channels", None)  # a student pruned from this teacher (`models.pruning`)
        if self.projection is not None and kept is not None:
            start_at_selection(self.projection, kept, student.config.hidden_size,
                               getattr(teacher, "config", teacher).hidden_size, modes)
        self.unused = [] if full else pooler_parameters(student)  # no embedding reads it
        self.needs = {"teacher": {"hidden": True}, "student": {"hidden": True}}
        self.trainable = self.projection  # training-only parameters of the student side
        self.notes = [f"embedding objective: {'+'.join(self.pipeline.pooling)} pooling"
                      + (", normalised" if self.pipeline.normalize else "")
                      + (f", a {s_width} -> {t_width} projection" if self.projection is not None else "")
                      + (" starting at the pruned channels' places" if self.projection is not None and
                         kept is not None else "")]

    def read(self, features: dict, attention_mask, side: str):
        projection = self.projection if side == "student" else None
        return embed(features["hidden"][-1], attention_mask, self.pipeline, projection)

    def losses(self, teacher, student, batch: dict) -> dict:
        return {"embedding": self.loss(student, teacher)}

    def dense(self) -> nn.Linear | None:
        """What the student needs at inference beyond its encoder: the projection, when there is one."""
        return self.projection


class CachedEmbedding(DistillationObjective):
    """The `embedding` objective alone, against the teacher's sentence embeddings computed once for the corpus
    (`data.vector_cache`): the batch carries them (`teacher_embedding`), so the teacher never runs while the student
    trains, and the student may read the text with a tokenizer of its own. Its equation is `Embedding`'s."""

    name = "embedding"
    teacher_view = None  # `distill_losses` takes the teacher's features from the batch

    @classmethod
    def build(cls, settings: ObjectiveSettings, teacher, student) -> "CachedEmbedding":
        return cls(settings.embedding, teacher, student, settings.pipeline)

    def __init__(self, cfg: EmbeddingLoss, teacher, student, pipeline: Pipeline | None = None):
        from minilm.objectives.combined import SharedView

        self.part = Embedding(cfg, teacher, student, pipeline)
        self.student_view = SharedView(student, False, "student", [self.part])
        self.unused, self.notes = self.part.unused, self.part.notes + [
            "embedding objective: the teacher's sentence embeddings are computed once for the corpus; the teacher "
            "does not run while the student trains"]

    def teacher_features(self, batch: dict) -> list:
        return [batch["teacher_embedding"]]

    def losses(self, teacher: list, student: list, batch: dict) -> dict:
        return self.part.losses(teacher[0], student[0], batch)

    def dense(self) -> nn.Linear | None:
        return self.part.dense()

    def warm_start(self, student, examples, pad_id: int, device) -> None:
        """The projection (when the widths differ) starts at the least-squares map (`fit_projection`)."""
        if self.part.projection is not None:
            cosine = fit_projection(self.part.projection, student, self.part.pipeline, examples, pad_id, device)
            self.notes.append(f"embedding objective: the projection starts at the least-squares map of the student's "
                              f"embeddings onto the teacher's (cosine {cosine:.3f} on a sample)")


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


@torch.inference_mode()
def fill_teacher_embeddings(out: np.ndarray, teacher, pipeline: Pipeline, examples, pad_id: int, device,
                            batch_size: int = 64, progress: bool = True) -> None:
    """`out[i]` = the teacher's sentence embedding of example `i` (its own pooling and normalisation), in float32,
    batches of similar lengths."""
    from tqdm import tqdm

    from minilm.data.batches import pad_batch
    from minilm.models.architectures import inputs_for

    order = np.argsort(examples.lengths, kind="stable")
    teacher.eval()
    with tqdm(total=len(order), desc="teacher embeddings", unit=" examples", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            ids = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in pad_batch([examples[i] for i in ids], pad_id).items()}
            hidden = teacher.base_model(**inputs_for(teacher, batch)).last_hidden_state
            out[ids] = embed(hidden, batch["attention_mask"], pipeline).float().cpu().numpy()
            bar.update(len(ids))


@torch.no_grad()
def fit_projection(projection: nn.Linear, student, pipeline: Pipeline, examples, pad_id: int, device,
                   sample: int = 2048, batch_size: int = 64, ridge: float = 1e-3) -> float:
    """Start the projection W (student width -> teacher width) at the least-squares map from the student's pooled
    embeddings to the teacher's cached ones on up to `sample` examples (ridge-regularised), instead of at random:
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
        pooled.append(pool(hidden, batch["attention_mask"], pipeline.pooling).double().cpu())
        targets.append(batch["teacher_embedding"].double().cpu())
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
