"""`minilm student`: build an untrained student from a teacher (random, teacher-layer or pruned init, its shape
given or chosen by speed) and save it (in the teacher's sentence-transformers layout when the teacher has one)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from minilm.config.commands import StudentConfig
from minilm.config.sections import SENTENCE_MAX_LENGTH
from minilm.data.files import check_writable
from minilm.data.token_cache import build_token_cache
from minilm.errors import require
from minilm.measure.shape_speed import SHAPES_FILE, student_by_speed
from minilm.models.loading import save_model
from minilm.models.pruning import calibration_batches
from minilm.models.sentence import save_sentence_transformer
from minilm.models.source import resolve_model
from minilm.models.students import build_student, resolve_init


def make_student(cfg: StudentConfig) -> Path:
    """Save a new student (and the teacher's tokenizer) to `cfg.output_dir`."""
    out = Path(cfg.output_dir)
    require(not out.exists() or (out.is_dir() and not any(out.iterdir())), f"output_dir {out} is not empty; choose another")
    check_writable(out, "output_dir")
    teacher = resolve_model(cfg.teacher)
    model = teacher.load()
    with tempfile.TemporaryDirectory() as shapes:  # the speed table joins the student once it is saved
        wanted = student_by_speed(cfg.student, model.config, shapes)
        calibration = None
        if resolve_init(wanted, model.config) == "prune":
            examples = build_token_cache(teacher.tokenizer, SENTENCE_MAX_LENGTH, cfg.corpus)
            calibration = calibration_batches(examples, teacher.tokenizer.pad_token_id, cfg.seed)
        student = build_student(wanted, model, teacher.tokenizer, cfg.dropout, cfg.seed, calibration=calibration,
                                say=print)
        save_model(student, teacher.tokenizer, out)
        if teacher.pipeline.sentence_transformer:  # as its teacher is: pooling and normalisation beside it
            save_sentence_transformer(out, teacher.pipeline)
        if (Path(shapes) / SHAPES_FILE).is_file():  # last: the saves above write the directory anew
            shutil.copy(Path(shapes) / SHAPES_FILE, out / SHAPES_FILE)
    return out
