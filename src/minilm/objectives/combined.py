"""The objectives that read a shared forward, run as one: `--objective minilm embedding --objective-weights 1 2`,
and any one of them alone (`--objective minilmv2`). One forward of each model serves them all, and their weighted
terms are summed:

    L = sum_i w_i L_i        (each L_i an objective's own terms, kept under their own names in the log)

Each part keeps the `objectives.base.SharedObjective` contract (`needs`, `read`, `trainable`, `unused`).
`SharedView` runs the model once (`views.EncoderView`: the Q, K, V of every layer any part names, the hidden
states only when a part reads them, so MiniLM alone stops each model at the layer it reads) and hands each part its
reading; a parameter is frozen only when no part trains it.

The teacher's readings may be computed once per example and kept (`use_cache`, filled by
`objectives.teacher_cache`): each part's reading is then rebuilt from the arrays the batch carries
(`teacher:PART.FIELD`), and the teacher never runs while the student trains.
"""

from __future__ import annotations

from torch import nn

from minilm.data.batches import TEACHER_PREFIX
from minilm.errors import require
from minilm.objectives.base import DistillationObjective, SharedObjective
from minilm.objectives.views import EncoderView


class SharedView(nn.Module):
    """forward(input_ids, attention_mask, token_type_ids=None) -> ([each part's reading], task logits)."""

    def __init__(self, model: nn.Module, full: bool, side: str, parts: list[SharedObjective]):
        super().__init__()
        layers = sorted({layer for part in parts for layer in part.needs[side].qkv})
        hidden = any(part.needs[side].hidden for part in parts)
        self.encoder = EncoderView(model, full, qk_layers=layers, hidden=hidden)
        self.side, self.parts = side, list(parts)
        # The student side's training-only parameters belong to the module `fit` trains (and DDP wraps).
        self.trainable = nn.ModuleList([p.trainable for p in parts if side == "student" and p.trainable is not None])

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        features, logits = self.encoder(input_ids, attention_mask, token_type_ids)
        return [part.read(features, attention_mask, self.side) for part in self.parts], logits


LOGITS = "logits"  # the kept field of a task teacher's logits


def field_key(index: int, field: str) -> str:
    """A kept field's name in the cache and (after `TEACHER_PREFIX`) in the batch: the part's index, the field."""
    return f"{index}.{field}"


class Combined(DistillationObjective):
    """The weighted sum of shared-forward objectives' terms, from one forward of each model (or of the student
    alone, against the teacher's kept readings)."""

    name = "combined"

    def __init__(self, parts: list[tuple[float, SharedObjective]], teacher, student, full: bool = False):
        self.weights, self.parts = [w for w, _ in parts], [p for _, p in parts]
        self.teacher_view = SharedView(teacher, full, "teacher", self.parts)
        self.student_view = SharedView(student, full, "student", self.parts)
        trained = {id(p) for p in student.parameters()} - set.intersection(*({id(p) for p in part.unused}
                                                                           for part in self.parts))
        self.unused = [p for p in student.parameters() if id(p) not in trained]
        self.notes = [note for part in self.parts for note in part.notes]
        self.full, self.cached = full, False
        if len(self.parts) > 1:
            self.notes.append("objectives: " + " + ".join(f"{w:g} x {part.name}" for w, part in parts))

    # -- the teacher's readings kept -------------------------------------------------------------------------
    def teacher_fields(self, logits: str | None = None) -> dict[str, str] | None:
        """Every part's kept arrays by `field_key`, and for a task-specific run (`full`) the teacher's logits in
        the layout `logits` says ("vector" for a sentence task's, "token" for span scores); None when a part's
        reading cannot be kept."""
        fields = {}
        for index, part in enumerate(self.parts):
            own = part.teacher_fields()
            if own is None:
                return None
            fields.update({field_key(index, name): kind for name, kind in own.items()})
        if self.full:
            if logits is None:
                return None
            fields[LOGITS] = logits
        return fields

    def pack(self, readings: list, logits) -> dict:
        """The teacher view's output as the arrays `teacher_fields` names."""
        arrays = {field_key(i, name): value for i, (part, reading) in enumerate(zip(self.parts, readings))
                  for name, value in part.pack(reading).items()}
        if self.full:
            arrays[LOGITS] = logits
        return arrays

    def use_cache(self, logits: str | None = None) -> None:
        """From now on the teacher's readings (and logits) come with each batch (`teacher:` arrays); the teacher
        view is gone."""
        require(self.teacher_fields(logits) is not None, "the teacher's readings of these objectives cannot be kept")
        self.teacher_view, self.cached = None, True

    def teacher_features(self, batch: dict, inputs: dict):
        if not self.cached:
            return super().teacher_features(batch, inputs)
        readings = []
        for index, part in enumerate(self.parts):
            readings.append(part.unpack({name: batch[TEACHER_PREFIX + field_key(index, name)]
                                         for name in part.teacher_fields()}))
        return readings, batch.get(TEACHER_PREFIX + LOGITS)

    # -- the step -------------------------------------------------------------------------------------------
    def losses(self, teacher: list, student: list, batch: dict) -> dict:
        terms = {}
        for weight, part, t, s in zip(self.weights, self.parts, teacher, student):
            for name, value in part.losses(t, s, batch).items():
                require(name not in terms, f"two objectives both name a loss term '{name}'")
                terms[name] = weight * value
        return terms

    def dense(self) -> nn.Linear | None:
        """The projection a sentence-transformers student keeps at inference (the embedding objective's)."""
        return next((dense for part in self.parts if (dense := part.dense()) is not None), None)

    def warm_start(self, student, examples, pad_id: int, device) -> list[str]:
        """Each part's start from the data, with its kept teacher arrays when the teacher is kept."""
        notes = []
        for index, part in enumerate(self.parts):
            kept = None
            if self.cached:
                def kept(batch, index=index, part=part):
                    return {name: batch[TEACHER_PREFIX + field_key(index, name)] for name in part.teacher_fields()}
            notes += part.warm_start(student, examples, pad_id, device, kept)
        return notes
