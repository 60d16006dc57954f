"""End to end through the `minilm` command: tiny models on made-up tasks, the packaged teacher on real data."""

from __future__ import annotations

import json

import pytest
from helpers.cli import REPO, run_cli
from helpers.runs import objective_args, saved_keys

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]


def test_distill_packaged_teacher_on_real_text(data_root, tmp_path):
    """The main job in miniature: the real teacher, real text, loss falling, a loadable student."""
    out = tmp_path / "main_job"
    result = run_cli("distill", "--config", "configs/cpu_testbed.yaml", "--data",
                     data_root / "text" / "wikitext-2-valid.txt", data_root / "glue" / "SST-2" / "dev.tsv",
                     "--output-dir", out, "--cache-dir", tmp_path / "cache", "--max-steps", "40", "--batch-size", "16",
                     "--max-length", "64", "--warmup-steps", "4", "--log-every", "4", "--save-every", "20",
                     cwd=str(REPO))
    assert result.returncode == 0, result.stderr[-2000:]
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:2]) / 2, losses
    from transformers import AutoModel

    student = AutoModel.from_pretrained(out / "model")
    assert (student.config.num_hidden_layers, student.config.hidden_size) == (3, 384)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000020", "step-00000040"]


def test_finetune_packaged_teacher_on_real_sst2(data_root, tmp_path):
    out = tmp_path / "sst2"
    result = run_cli("finetune", "--model", "packaged:all-MiniLM-L6-v2", "--task", "sst2", "--output-dir", out,
                     "--max-steps", "40", "--lr", "1e-4", "--warmup-steps", "4", "--batch-size", "32",
                     "--eval-every", "40", "--log-every", "10")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["best"]["accuracy"] > 65.0  # 40 steps lift the real teacher well above chance (50.9%)


@pytest.mark.parametrize("objective, terms", [("tinybert", {"attention", "hidden", "embedding"}),
                                              ("distilbert", {"loss"}), ("hidden-mse", {"loss"})])
def test_baseline_objectives_on_the_packaged_teacher(objective, terms, data_root, tmp_path):
    out = tmp_path / objective
    result = run_cli(*objective_args("packaged:all-MiniLM-L6-v2", objective, out, data_root / "glue" / "SST-2" / "dev.tsv",
                                     "--student-layers", "2", "--student-init", "teacher"))
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3 and terms <= set(records[-1]) and all(r["loss"] > 0 for r in records)
    if objective == "distilbert":
        assert result.stdout.count("only the cosine term runs") == 1  # said once
    from transformers import AutoModel

    student = AutoModel.from_pretrained(out / "model")
    assert type(student).__name__ == "BertModel" and student.config.num_hidden_layers == 2
    assert all(k.startswith(("embeddings.", "encoder.", "pooler.")) for k in saved_keys(out / "model"))


def test_packaged_teacher_reads_its_published_sts_b_test_score(data_root):
    """MTEB's figure for all-MiniLM-L6-v2 on STS-B test: 82.03 (cosine of normalised mean-pooled embeddings,
    Spearman x 100), here through the Python API of `minilm evaluate --zero-shot` on the official test file."""
    import minilm

    scores = minilm.evaluate(model="packaged:all-MiniLM-L6-v2", task="stsb", split="test", zero_shot=True,
                             batch_size=32).metrics
    assert scores["pairs"] == 1379 and round(scores["spearman"], 2) == 82.03
