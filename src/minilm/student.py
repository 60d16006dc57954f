"""`minilm student`: build an untrained student from a teacher (random or teacher-layer init) and save it (in the
teacher's sentence-transformers layout when the teacher has one)."""

from __future__ import annotations

from pathlib import Path

from minilm.config import StudentConfig
from minilm.errors import require
from minilm.models import build_student, load_encoder, load_tokenizer, save_model
from minilm.rundir import check_writable
from minilm.sentence import pipeline_of, save_sentence_transformer


def make_student(cfg: StudentConfig) -> Path:
    """Save a new student (and the teacher's tokenizer) to `cfg.output_dir`."""
    out = Path(cfg.output_dir)
    require(not out.exists() or (out.is_dir() and not any(out.iterdir())), f"output_dir {out} is not empty; choose another")
    check_writable(out, "output_dir")
    tokenizer = load_tokenizer(cfg.teacher)
    student = build_student(cfg.student, load_encoder(cfg.teacher), tokenizer, cfg.dropout, cfg.seed)
    save_model(student, tokenizer, out)
    if pipeline_of(cfg.teacher).sentence_transformer:  # as its teacher is: pooling and normalisation beside it
        save_sentence_transformer(out, cfg.teacher)
    return out
