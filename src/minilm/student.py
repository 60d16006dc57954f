"""`minilm student`: build an untrained student from a teacher (random or teacher-layer init) and save it."""

from __future__ import annotations

from pathlib import Path

from minilm.config import StudentConfig
from minilm.errors import require
from minilm.models import load_encoder, load_tokenizer, save_model, student_from_teacher


def make_student(cfg: StudentConfig) -> Path:
    """Save a new student (and the teacher's tokenizer) to `cfg.output_dir`."""
    out = Path(cfg.output_dir)
    require(not out.exists() or not any(out.iterdir()), f"output_dir {out} is not empty; choose another")
    tokenizer = load_tokenizer(cfg.teacher)
    teacher = load_encoder(cfg.teacher)
    student = student_from_teacher(teacher, cfg.student_layers, cfg.student_hidden, cfg.student_heads,
                                   cfg.student_ffn, cfg.dropout, cfg.student_init, cfg.student_init_layers,
                                   seed=cfg.seed)
    save_model(student, tokenizer, out)
    return out
