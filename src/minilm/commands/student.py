"""`minilm student`: build an untrained student from a teacher (random or teacher-layer init) and save it (in the
teacher's sentence-transformers layout when the teacher has one)."""

from __future__ import annotations

from pathlib import Path

from minilm.config.commands import StudentConfig
from minilm.data.files import check_writable
from minilm.errors import require
from minilm.models.loading import save_model
from minilm.models.sentence import save_sentence_transformer
from minilm.models.source import resolve_model
from minilm.models.students import build_student


def make_student(cfg: StudentConfig) -> Path:
    """Save a new student (and the teacher's tokenizer) to `cfg.output_dir`."""
    out = Path(cfg.output_dir)
    require(not out.exists() or (out.is_dir() and not any(out.iterdir())), f"output_dir {out} is not empty; choose another")
    check_writable(out, "output_dir")
    teacher = resolve_model(cfg.teacher)
    student = build_student(cfg.student, teacher.load(), teacher.tokenizer, cfg.dropout, cfg.seed)
    save_model(student, teacher.tokenizer, out)
    if teacher.pipeline.sentence_transformer:  # as its teacher is: pooling and normalisation beside it
        save_sentence_transformer(out, teacher.pipeline)
    return out
