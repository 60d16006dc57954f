"""`minilm export`: for each head a float32 graph that keeps what PyTorch predicts and an int8 graph for this CPU's
target, in the sentence-transformers layout; another target on request; a sentence-transformers model's pooled
graph equal to `SentenceTransformer.encode`; and bad input answered in one line (docs/errors.md's rows)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.cli import assert_one_line_error, ok, run_main
from helpers.models import tiny_bert

from minilm.deploy.cpu_target import host_target
from minilm.deploy.onnx_model import OnnxModel

TEXTS = ["a short one", "a rather longer sentence about nothing in particular at all", "mid length text"]


def tiny_with_head(head: str | None, directory, tokenizer):
    from transformers import BertForQuestionAnswering

    if head == "classification":
        model = tiny_bert(num_labels=3, attn="sdpa", init_range=0.2)
        model.config.id2label = {0: "neg", 1: "mixed", 2: "pos"}
        model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    elif head == "question-answering":
        model = BertForQuestionAnswering(tiny_bert(init_range=0.2).config)
    else:
        model = tiny_bert(attn="sdpa", init_range=0.2)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model.eval()


@pytest.mark.parametrize("head", [None, "classification", "question-answering"])
def test_each_head_exports_float32_that_keeps_its_outputs_and_int8_for_this_cpu(head, tmp_path, tokenizer):
    model = tiny_with_head(head, tmp_path / "model", tokenizer)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected = model(**batch)
    out = tmp_path / "onnx"
    result = ok(run_main("export", "--model", tmp_path / "model", "--output-dir", out, "--quantize", "int8"))
    target = host_target()[0]
    record = json.loads((out / "export.json").read_text())
    assert record["format"] == 2 and record["head"] == head and record["quantize"] == "int8"
    assert record["default"] == f"onnx/model_qint8_{target}.onnx" and record["int8"]["target"] == target
    assert record["graph"] == "fused" and record["graphs"]["onnx/model.onnx"]["fusion"]["Attention"] == 2
    assert {"config.json", "tokenizer.json", "model.safetensors"} <= {p.name for p in out.iterdir()}  # a copy
    assert f"onnx/model_qint8_{target}.onnx [default]: int8, fused" in result.stdout
    # float32: what the model predicts, kept
    got = OnnxModel(out / "onnx" / "model.onnx")(**batch)
    if head is None:
        cosine = torch.nn.functional.cosine_similarity(got.last_hidden_state[real], expected.last_hidden_state[real])
        assert float(cosine.min()) > 0.9999
    elif head == "classification":
        assert torch.equal(got.logits.argmax(-1), expected.logits.argmax(-1))
        assert json.loads((out / "config.json").read_text())["id2label"]["2"] == "pos"
    else:
        for name in ("start_logits", "end_logits"):
            want, have = getattr(expected, name), getattr(got, name)
            assert torch.equal(have.masked_fill(~real, -1e9).argmax(-1), want.masked_fill(~real, -1e9).argmax(-1))
    checks = record["graphs"]["onnx/model.onnx"]["checks"]
    assert checks["max_abs_diff"] < 1e-4 and checks.get("moved", 0) == 0 and checks.get("cosine_min", 1) > 0.9999
    # int8: its structure and scheme (how close it computes is the packaged teacher's test: tests/deploy)
    int8 = record["graphs"][record["default"]]
    assert int8["precision"] == "int8" and int8["int8"]["per_channel"] and int8["int8_operators"]["QAttention"] == 2
    assert int8["int8"]["reduce_range"] == (target == "avx2") and int8["checks"]["samples"] == 16
    assert int8["size_bytes"] < 0.4 * record["graphs"]["onnx/model.onnx"]["size_bytes"]
    default = OnnxModel(out)
    assert default.graph_name == record["default"]
    assert all(getattr(default(**batch), name).shape == getattr(expected, name).shape
               for name in record["graphs"][record["default"]]["outputs"])


def test_another_cpus_int8_on_request(tmp_path, tiny_teacher_dir):
    result = ok(run_main("export", "--model", tiny_teacher_dir, "--output-dir", tmp_path / "vnni", "--quantize", "int8",
                         "--target", "avx512_vnni"))
    record = json.loads((tmp_path / "vnni" / "export.json").read_text())
    assert record["int8"]["target"] == "avx512_vnni" and not record["int8"]["reduce_range"]
    assert sorted(p.name for p in (tmp_path / "vnni" / "onnx").iterdir()) == ["model.onnx",
                                                                            "model_qint8_avx512_vnni.onnx"]
    assert result.stdout.startswith("int8 for avx512_vnni (asked for): ")
    assert ("this CPU has no VNNI" in result.stdout) == (host_target()[0] == "avx2")


def test_a_sentence_transformers_models_pooled_graph_gives_its_embeddings(sentence_teacher, tmp_path):
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    out = tmp_path / "st"
    ok(run_main("export", "--model", sentence_teacher, "--output-dir", out, "--pooling", "--quantize", "int8"))
    target = host_target()[0]
    record = json.loads((out / "export.json").read_text())
    assert record["default_pooled"] == f"onnx/model_pooled_qint8_{target}.onnx"
    assert record["pooling"] == {"pooling": ["mean"], "normalize": True}
    assert {"modules.json", "1_Pooling"} <= {p.name for p in out.iterdir()}  # still a sentence-transformers model
    texts = ["A man is playing a guitar.", "dull.", "The committee met on Tuesday and voted to wait."]
    want = SentenceTransformer(sentence_teacher, device="cpu").encode(texts)
    tokens = AutoTokenizer.from_pretrained(out)(texts, padding=True, return_tensors="np")
    for name, bound in (("onnx/model_pooled.onnx", 0.9999), (record["default_pooled"], 0.99)):
        graph = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        assert [i.name for i in graph.get_inputs()] == ["input_ids", "attention_mask"]
        got = graph.run(["sentence_embedding"], {k: tokens[k] for k in ("input_ids", "attention_mask")})[0]
        cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        assert cosine.min() >= bound, (name, cosine)
    assert record["graphs"]["onnx/model_pooled.onnx"]["fusion"]["Attention"] == 2  # it fuses too


# (docs/errors.md row, arguments after --model and --output-dir, what the one line says)
BAD_EXPORTS = [
    ("exporting a directory that is not a model", "not_a_model", (), "is not a model directory"),
    ("exporting a masked-LM checkpoint", "mlm", (),
     "minilm export takes encoders, sequence classifiers and question-answering models; "),
    ("unknown quantization", "tiny", ("--quantize", "int4"), "quantize must be one of none, int8, got 'int4'"),
    ("unknown int8 target", "tiny", ("--quantize", "int8", "--target", "avx512"),
     "target must be one of auto, avx2, avx512_vnni, arm64, got 'avx512'"),
    ("--target on a float32 export", "tiny", ("--target", "avx2"),
     "--target avx2 picks the CPU of an int8 graph; add --quantize int8, or drop --target"),
    ("--pooling on a model that is not a sentence-transformers model", "tiny", ("--pooling",),
     "is a plain Hugging Face encoder (no modules.json): drop --pooling"),
    ("--pooling on a classifier", "classifier", ("--pooling",), "is a classification model: drop --pooling"),
    ("--graph fused on a family the optimizer does not fuse", "mpnet", ("--graph", "fused"),
     "onnxruntime's optimizer fuses BERT, ELECTRA, RoBERTa, DistilBERT graphs, not MPNet's; use --graph auto or plain"),
    ("exporting into a directory of other files", "tiny", ("--output-dir", "notes"),
     "holds files that minilm export did not write"),
    ("exporting over an earlier export", "tiny", ("--output-dir", "earlier"),
     "holds an earlier export; pass --overwrite"),
]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, tiny_teacher_dir, tokenizer):
    from helpers.families import family_model
    from transformers import BertForMaskedLM

    root = tmp_path_factory.mktemp("bad_exports")
    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert().config).save_pretrained(root / "mlm")
    tiny_bert(num_labels=2).save_pretrained(root / "classifier")
    family_model("mpnet").save_pretrained(root / "mpnet")
    for name in ("mlm", "classifier", "mpnet"):
        tokenizer.save_pretrained(root / name)
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("mine")
    (root / "not_a_model").mkdir()
    (root / "earlier").mkdir()
    (root / "earlier" / "export.json").write_text("{}")
    return {"root": root, "tiny": tiny_teacher_dir}


@pytest.mark.parametrize("case", BAD_EXPORTS, ids=[c[0] for c in BAD_EXPORTS])
def test_bad_input_gets_one_line(case, bad_inputs):
    from helpers.cli import REPO

    row, model, extra, fragment = case
    root = bad_inputs["root"]
    model = bad_inputs["tiny"] if model == "tiny" else root / model
    extra = tuple(str(root / a) if a in ("notes", "earlier") else a for a in extra)
    line = assert_one_line_error(run_main("export", "--model", model, "--output-dir", root / "out", *extra), fragment)
    assert fragment in line and not (root / "out").exists()
    assert (root / "notes" / "todo.txt").read_text() == "mine"
    assert not any(p.name.startswith(".tmp") for p in root.iterdir())  # nothing half-written left
    rows = {r.split("|")[1].strip(): r for r in (REPO / "docs" / "errors.md").read_text().splitlines()
            if r.startswith("| ")}
    assert row in rows and fragment in rows[row], f"docs/errors.md's row for {row} does not say {fragment}"


def test_sigterm_during_an_export_leaves_no_temporary_files(tmp_path, tiny_teacher_dir):
    import signal
    import subprocess
    import sys
    import time

    from helpers.cli import cli_env

    out = tmp_path / "exported"
    process = subprocess.Popen([sys.executable, "-m", "minilm.cli", "export", "--model", tiny_teacher_dir,
                                "--output-dir", str(out), "--quantize", "int8"], env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not list(tmp_path.glob(".tmp-exported*")):
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)  # while the graphs are being written
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM and stderr.strip() == "minilm: stopped by SIGTERM", stderr
    assert list(tmp_path.iterdir()) == []  # neither the export nor its temporary directory
