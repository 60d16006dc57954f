"""End to end through the `minilm` command: tiny models on made-up tasks, the packaged teacher on real data."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from helpers.cli import error_line, ok, run_cli, run_main
from helpers.tasks import STS_ROWS
from helpers.runs import distill_args, objective_args, saved_keys, small_run

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]


def test_task_specific_distillation(tasks, tiny_teacher_dir, tmp_path):
    teacher = tmp_path / "teacher_ft"
    ft = run_cli("finetune", "--model", tiny_teacher_dir, "--task", "sst2", "--task-dir", tasks / "SST-2",
                 "--output-dir", teacher, "--max-steps", "6", *small_run())
    assert ft.returncode == 0, ft.stderr[-2000:]
    out = tmp_path / "task_distill"
    result = run_cli("distill", "--teacher", teacher / "best", "--task", "sst2", "--task-dir", tasks / "SST-2",
                     "--output-dir", out, "--student-layers", "1", "--student-hidden", "32", "--student-heads", "4",
                     "--student-ffn", "64", "--student-init", "teacher", "--max-steps", "6", "--hard-label-weight", "0.5",
                     "--temperature", "2", *small_run())
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*records)
    assert {"attention", "value", "output", "hard", "dev_accuracy"} <= logged
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["layers"] == 1 and (out / "best" / "config.json").is_file()


def test_distilbert_with_a_masked_lm_teacher_and_a_narrower_student(mlm_teacher_dir, tmp_path):
    """MLM terms active; the student's masked-LM head and width projection are trained but never saved."""
    out = tmp_path / "distilbert_mlm"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat while the dog ran under the old tree\n" * 30)
    result = run_cli(*objective_args(mlm_teacher_dir, "distilbert", out, corpus, "--student-layers", "1",
                                     "--student-hidden", "16", "--student-heads", "4", "--distilbert-mlm", "on"))
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"ce", "mlm", "cosine"} <= set(records[-1])
    keys = saved_keys(out / "model")
    assert not any(k.startswith(("cls.", "mlm_head", "projections")) for k in keys)
    assert "embeddings.word_embeddings.weight" in keys


def test_a_full_disk_at_the_final_save_leaves_no_half_model(tiny_teacher_dir, corpus, tmp_path, monkeypatch):
    from transformers import BertModel

    original = BertModel.save_pretrained

    def full_disk(self, path, *args, **kwargs):
        if ".tmp-model" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(BertModel, "save_pretrained", full_disk)
    out = tmp_path / "full"
    line = error_line(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    assert "No space left on device" in line and "the trained student is in" in line and "step-00000003" in line
    assert not (out / "model").exists() and not list(out.glob(".tmp-model*"))


def test_task_specific_distillation_on_a_custom_task(tiny_teacher_dir, sst2_like, tmp_path):
    custom = ["--task", "reviews", "--task-dir", sst2_like / "reviews", "--text-columns", "review",
              "--label-column", "verdict"]
    teacher = tmp_path / "teacher"
    ok(run_main("finetune", "--model", tiny_teacher_dir, "--output-dir", teacher, "--max-steps", "4", "--batch-size",
                "8", "--max-length", "32", *custom))
    out = tmp_path / "student"
    ok(run_main("distill", "--teacher", teacher / "best", "--output-dir", out, "--student-layers", "1",
                "--student-hidden", "32", "--student-heads", "4", "--max-steps", "4", "--batch-size", "8",
                "--max-length", "32", "--eval-every", "2", *custom))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["task"] == "reviews" and 0 <= summary["best"]["accuracy"] <= 100
    assert json.loads((out / "best" / "config.json").read_text())["id2label"] == {"0": "no", "1": "yes"}


SENTENCES = ["A man is playing a guitar.", "Two dogs run through the snow.",
             "The stock market fell sharply on Monday after weeks of gains, traders said."]




def test_distilling_a_sentence_transformers_teacher_gives_a_sentence_transformers_student(sentence_teacher, tmp_path):
    """minilm + embedding, a narrower student: its projection is saved as a Dense module, so the student's
    embeddings have the teacher's width, and both loaders take the directory."""
    from helpers.cli import run_main
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(a for a, _, _ in STS_ROWS * 4) + "\n")
    out = tmp_path / "run"
    result = run_main("distill", "--teacher", sentence_teacher, "--data", corpus, "--output-dir", out, "--cache-dir",
                      tmp_path / "cache", "--objective", "minilm", "embedding", "--objective-weights", "1", "10",
                      "--student-layers", "1", "--student-hidden", "16", "--student-heads", "4", "--batch-size", "4",
                      "--max-steps", "3", "--max-length", "32", "--examples", "line", "--precision", "fp32")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "objectives: 1 x minilm + 10 x embedding" in result.stdout
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"attention", "value", "embedding"} <= set(logged[-1])
    vectors = SentenceTransformer(str(out / "model"), device="cpu").encode(SENTENCES)
    assert vectors.shape == (3, 32)  # the teacher's width, through the saved Dense module
    assert AutoModel.from_pretrained(out / "model").config.hidden_size == 16

    # --embedding-output own, on resuming the finished run elsewhere: no step trains again, the projection is left
    # out, and the student's embeddings have its own width
    import shutil

    own = tmp_path / "own"
    shutil.copytree(out, own, ignore=lambda folder, names: ["model"] if Path(folder) == out else [])
    result = run_main("distill", "--teacher", sentence_teacher, "--data", corpus, "--output-dir", own, "--cache-dir",
                      tmp_path / "cache", "--objective", "minilm", "embedding", "--objective-weights", "1", "10",
                      "--student-layers", "1", "--student-hidden", "16", "--student-heads", "4", "--batch-size", "4",
                      "--max-steps", "3", "--max-length", "32", "--examples", "line", "--precision", "fp32",
                      "--embedding-output", "own")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not any(path.name.endswith("_Dense") for path in (own / "model").iterdir())
    assert SentenceTransformer(str(own / "model"), device="cpu").encode(SENTENCES).shape == (3, 16)


def test_a_student_with_a_tokenizer_of_its_own_learns_the_teachers_sentence_embeddings(tiny_teacher_dir, tmp_path,
                                                                                       varied_corpus):
    """--student-init a model that reads text its own way (here RoBERTa-style BPE, and narrower than the teacher):
    the embedding objective alone through a projection started at least squares, whole sentences, the teacher's
    embeddings computed once; the student keeps its tokenizer. Other objectives are refused in one line."""
    import json

    import torch
    from helpers.cli import assert_one_line_error
    from helpers.families import family_config, roberta_tokenizer
    from transformers import AutoModel, AutoTokenizer

    own = tmp_path / "own"
    tok = roberta_tokenizer(own)
    config = family_config("roberta")
    config.vocab_size, config.num_hidden_layers, config.hidden_size, config.intermediate_size = len(tok), 1, 16, 32
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(own)
    common = ["distill", "--teacher", tiny_teacher_dir, "--student-init", own, "--data", varied_corpus,
              "--cache-dir", tmp_path / "cache", "--batch-size", "4", "--max-length", "32", "--precision", "fp32"]
    refused = run_main(*common, "--output-dir", tmp_path / "refused")
    assert_one_line_error(refused, "tokenizers differ", "--objective embedding")
    assert_one_line_error(run_main(*common, "--objective", "embedding", "--output-dir", tmp_path / "x"),
                          "tokenizers differ", "--examples sentence")
    # The teacher cannot run in the loop on the student's tokens: --teacher-cache off is refused, saying why.
    assert_one_line_error(run_main(*common, "--objective", "embedding", "--examples", "sentence", "--teacher-cache",
                                   "off", "--output-dir", tmp_path / "off"),
                          "teacher_cache off", "tokenizer of its own", "--teacher-cache auto")
    result = ok(run_main(*common, "--objective", "embedding", "--examples", "sentence", "--max-steps", "3",
                         "--log-every", "1", "--output-dir", tmp_path / "run"))
    assert "teacher does not run while the student trains" in result.stdout and "least-squares" in result.stdout
    assert AutoTokenizer.from_pretrained(tmp_path / "run" / "model").get_vocab() == tok.get_vocab()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)


def test_a_finished_run_resumed_builds_nothing_before_saying_so(tiny_teacher_dir, corpus, tmp_path, monkeypatch):
    """A run resumed at its last step neither loads its teacher nor builds its data (nor a teacher's cached
    embeddings): it says there is nothing to train and returns the student it saved."""
    import minilm.commands.distill as command

    out = tmp_path / "done"
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))

    def untouched(*args, **kwargs):
        raise AssertionError("a finished run built its teacher or its data again")
    monkeypatch.setattr(command, "resolve_model", untouched)
    monkeypatch.setattr(command, "build_token_cache", untouched)
    again = ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    assert "already reached step 3; nothing to train" in again.stdout and str(out / "model") in again.stdout


def test_a_teacher_assistant_goes_in_two_pruned_steps(sentence_teacher, tmp_path):
    """MiniLM's Table 3 recipe: teacher -> assistant -> student, each step pruned from the model above it and
    distilled by MiniLMv2 + the embedding loss; the assistant's saved model is the second run's teacher, and the
    final student is a sentence-transformers model of the smallest shape."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(a for a, _, _ in STS_ROWS * 4) + "\n")
    common = ["--data", corpus, "--cache-dir", tmp_path / "cache", "--objective", "minilmv2", "embedding",
              "--objective-weights", "1", "10", "--batch-size", "4", "--max-steps", "2", "--max-length", "32",
              "--examples", "sentence", "--precision", "fp32", "--embedding-output", "own"]
    first = ok(run_main("distill", "--teacher", sentence_teacher, "--output-dir", tmp_path / "assistant",
                        "--student-layers", "2", "--student-hidden", "24", *common))
    assert "24 of 32 channels, 3 of 4 heads" in first.stdout and "start: pruned from teacher layers" in first.stdout
    second = ok(run_main("distill", "--teacher", tmp_path / "assistant" / "model", "--output-dir",
                         tmp_path / "student", "--student-layers", "1", "--student-hidden", "8", *common))
    assert "pruned from teacher layers 2: the most active 8 of 24 channels, 1 of 3 heads" in second.stdout
    config = AutoModel.from_pretrained(tmp_path / "student" / "model").config
    assert config.hidden_size == 8
    # the chain is in the student's plan: pruned from the assistant, itself pruned from the teacher
    plan, assistant = config.minilm_plan, AutoModel.from_pretrained(tmp_path / "assistant" / "model").config
    assert plan["start"] == "prune" and plan["teacher"]["name"] == str(tmp_path / "assistant" / "model")
    assert plan["teacher_plan"] == assistant.minilm_plan and plan["teacher_plan"]["teacher"]["name"] == sentence_teacher
    assert SentenceTransformer(str(tmp_path / "student" / "model"), device="cpu").encode(SENTENCES).shape == (3, 8)


def test_a_teacher_replaced_at_the_same_path_gets_embeddings_of_its_own(sentence_teacher, corpus, tmp_path):
    import shutil

    from helpers.models import tiny_bert

    teacher = tmp_path / "teacher"
    shutil.copytree(sentence_teacher, teacher)

    def args(out):
        return ["distill", "--teacher", teacher, "--data", corpus, "--output-dir", out, "--cache-dir",
                tmp_path / "cache", "--objective", "embedding", "--student-layers", "1", "--student-hidden", "32",
                "--student-heads", "4", "--batch-size", "4", "--max-length", "32", "--max-steps", "1"]
    ok(run_main(*args(tmp_path / "first")))
    assert len(list((tmp_path / "cache").glob("targets-*"))) == 1
    tiny_bert(attn="sdpa", seed=1).save_pretrained(tmp_path / "other")
    shutil.copyfile(tmp_path / "other" / "model.safetensors", teacher / "model.safetensors")  # same path and config
    ok(run_main(*args(tmp_path / "second")))  # its embeddings are computed, not the first teacher's read
    assert len(list((tmp_path / "cache").glob("targets-*"))) == 2


def speed_table(config, speedup, shape):
    """A table `--speedup` would have timed, choosing `shape` (no graph exported, nothing timed)."""
    from minilm.models.speed_table import SpeedRow, SpeedTable

    return SpeedTable(speedup, "test CPU", 32, 1, [SpeedRow(shape, 1000, 100, 0.1, speedup + 0.5, speedup + 0.5)],
                      shape)


def speedup_args(teacher, corpus, out, *extra):
    return ["distill", "--teacher", teacher, "--data", corpus, "--output-dir", out, "--cache-dir", out.parent / "cache",
            "--speedup", "1.5", "--objective", "minilmv2", "--batch-size", "4", "--max-length", "32", "--max-steps", "4",
            "--save-every", "2", "--precision", "fp32", *extra]


def test_a_refused_speedup_run_leaves_nothing_behind(tiny_teacher_dir, tmp_path, monkeypatch):
    """The shapes are timed before the corpus is read; a corpus that turns out empty is refused and the output
    directory is not made (the speed table is a run file, written when the run starts), so the corrected command
    runs."""
    import minilm.commands.distill as command
    from helpers.cli import assert_one_line_error

    from minilm.models.architectures import Shape

    monkeypatch.setattr(command, "time_shapes", lambda config, speedup, say=print: speed_table(
        config, speedup, Shape(1, 16, 2, 32)))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    out = tmp_path / "o2s"
    assert_one_line_error(run_main(*speedup_args(tiny_teacher_dir, empty, out)), "corpus is empty")
    assert not out.exists() or not any(out.iterdir())
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(a for a, _, _ in STS_ROWS * 4) + "\n")
    ok(run_main(*speedup_args(tiny_teacher_dir, corpus, out)))
    assert json.loads((out / "student_shapes.json").read_text())["chosen"]["hidden"] == 16


@pytest.mark.parametrize("damage", ["cut short", "another shape"])
def test_a_resume_builds_the_checkpoints_student_whatever_the_speed_table_says(tiny_teacher_dir, tmp_path,
                                                                               monkeypatch, damage):
    """A --speedup run resumed: the student is the one its checkpoint's plan describes; the shapes are not timed
    again, and a damaged or changed student_shapes.json is not read."""
    import shutil

    import minilm.commands.distill as command

    from minilm.models.architectures import Shape

    monkeypatch.setattr(command, "time_shapes", lambda config, speedup, say=print: speed_table(
        config, speedup, Shape(1, 16, 2, 32)))
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(a for a, _, _ in STS_ROWS * 4) + "\n")
    out = tmp_path / "run"
    ok(run_main(*speedup_args(tiny_teacher_dir, corpus, out)))
    shutil.rmtree(out / "model")
    shutil.rmtree(out / "checkpoints" / "step-00000004")
    table = out / "student_shapes.json"
    if damage == "cut short":
        table.write_text(table.read_text()[:40])
    else:
        record = json.loads(table.read_text())
        record["chosen"] = {"layers": 2, "hidden": 24, "heads": 3, "ffn": 48}
        table.write_text(json.dumps(record))

    def timed_again(*args, **kwargs):
        raise AssertionError("the shapes were timed again")
    monkeypatch.setattr(command, "time_shapes", timed_again)
    again = ok(run_main(*speedup_args(tiny_teacher_dir, corpus, out)))
    assert "(the checkpoint's plan)" in again.stdout and "resuming from" in again.stdout
    config = json.loads((out / "model" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (1, 16)
