"""`minilm export`: ONNX round trips for each head (float32 equal, int8 close with the same predictions), the
exported directory scored by `minilm evaluate`, and bad input answered in one line."""

from __future__ import annotations

import numpy as np
import torch
from helpers.cli import run_main
from helpers.models import tiny_bert


def test_bad_input_gets_one_line(tiny_teacher_dir, tmp_path, tokenizer):
    from transformers import BertForMaskedLM

    mlm = tmp_path / "mlm"
    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert().config).save_pretrained(mlm)
    tokenizer.save_pretrained(mlm)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    (tmp_path / "not_a_model").mkdir()
    cases = [
        (("--model", tmp_path / "not_a_model", "--output-dir", tmp_path / "o1"), "is not a model directory"),
        (("--model", mlm, "--output-dir", tmp_path / "o2"),
         "minilm export takes encoders, sequence classifiers and question-answering models; "),
        (("--model", tiny_teacher_dir, "--output-dir", tmp_path / "o3", "--quantize", "int4"),
         "quantize must be one of none, int8, got 'int4'"),
        (("--model", tiny_teacher_dir, "--output-dir", tmp_path / "notes"),
         "holds files that minilm export did not write"),
    ]
    for args, fragment in cases:
        result = run_main("export", *args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and fragment in lines[0], result.stderr[-1500:]
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine" and not (tmp_path / "o2").exists()
    assert not np.any([p.name.startswith(".tmp") for p in tmp_path.iterdir()])  # nothing half-written left
