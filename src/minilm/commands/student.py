"""`minilm student`: build an untrained student from a teacher and save it, as `minilm distill` would start it
(its plan decided the same way: `models.plan`), in the teacher's sentence-transformers layout when the teacher has
one, and with the teacher's task head (sliced or copied as the start says) when the teacher has one."""

from __future__ import annotations

import json
from pathlib import Path

from minilm.config.commands import StudentConfig
from minilm.data.files import check_writable, write_atomic
from minilm.data.token_cache import build_token_cache
from minilm.errors import require
from minilm.measure.shape_speed import time_shapes
from minilm.models.fingerprint import fingerprint
from minilm.models.loading import save_model
from minilm.models.plan import RunText, TeacherId, plan_student
from minilm.models.sentence import save_sentence_transformer
from minilm.models.source import resolve_model
from minilm.models.speed_table import SHAPES_FILE
from minilm.models.students import build_student
from minilm.tasks import max_length_for
from minilm.tasks.kinds import SPAN, kind_of_model


def make_student(cfg: StudentConfig) -> Path:
    """Save a new student (and the teacher's tokenizer) to `cfg.output_dir`."""
    out = Path(cfg.output_dir)
    require(not out.exists() or out.is_dir(), f"output_dir {out} exists and is not a directory; choose another")
    require(not out.exists() or not any(out.iterdir()), f"output_dir {out} is not empty; choose another")
    check_writable(out, "output_dir")
    source = resolve_model(cfg.teacher)
    kind = kind_of_model(source.config)
    num_labels = source.config.num_labels if kind is not None and kind is not SPAN else None
    teacher = source.load(head=kind.head if kind else None, num_labels=num_labels)
    max_length = max_length_for(cfg.max_length, None)
    table = time_shapes(teacher.config, cfg.student.speedup) if cfg.student.speedup is not None else None

    text = RunText(lambda: build_token_cache(source.tokenizer, max_length, cfg.corpus), source.tokenizer, cfg.seed,
                   f"the corpus ({', '.join(cfg.corpus.data)}), {max_length} tokens each", source.pipeline)
    plan = plan_student(cfg.student, teacher, TeacherId.of(cfg.teacher, teacher.config, fingerprint(source.path)),
                        text, table)
    print(plan.describe())
    student = build_student(plan, teacher, cfg.dropout, cfg.seed, num_labels, head=kind.head if kind else None,
                            say=print)
    save_model(student, source.tokenizer, out)
    if source.pipeline.sentence_transformer:  # as its teacher is: pooling and normalisation beside it
        save_sentence_transformer(out, source.pipeline)
    if table is not None:  # last: the saves above write the directory anew
        write_atomic(out / SHAPES_FILE, json.dumps(table.to_dict(), indent=1))
    return out
