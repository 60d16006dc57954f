"""Every bad input named in docs/errors.md: a one-line error, exit status 2, no traceback, no output.

Each case below is a row of docs/errors.md; `test_errors_doc_lists_every_case` keeps them in step. The cases
run `minilm.cli.main` in this process (the command line a user types, parsed and answered as the console
script does); `test_a_real_process_exits_2_with_one_line` checks one of them in a subprocess."""

from __future__ import annotations

from minilm.train.run_dir import RUN_FORMAT

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import REPO, assert_one_line_error, cli_env, run_cli, run_main

ERRORS_DOC = REPO / "docs" / "errors.md"


def _files(tmp: Path) -> dict:
    """Small inputs for the cases: good and bad corpora, task folders, odd output directories."""
    (tmp / "good.txt").write_text("a short line of text\nanother line of words here\n" * 20)
    (tmp / "empty.txt").write_text("\n \n")
    (tmp / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp / "cols.tsv").write_text("text\tlabel\nfine\t1\nbroken\t0\textra\n")
    task = tmp / "task"
    task.mkdir()
    (task / "train.tsv").write_text("sentence\tlabel\ngood movie\t1\nbad movie\t0\nodd one\t7\n")
    (task / "dev.tsv").write_text("sentence\tlabel\ngood\t1\n")
    empty_task = tmp / "empty_task"
    empty_task.mkdir()
    (empty_task / "train.tsv").write_text("sentence\tlabel\ngood movie\t1\n")
    (empty_task / "dev.tsv").write_text("sentence\tlabel\n")
    other_run = tmp / "other_run"
    other_run.mkdir()
    (other_run / "run.json").write_text(json.dumps({"format": RUN_FORMAT, "settings": {"student_layers": 9}, "resolved": {}}))
    not_a_run = tmp / "not_a_run"
    not_a_run.mkdir()
    (not_a_run / "notes.txt").write_text("mine")
    (tmp / "bad.yaml").write_text("student_layers: two\n")
    (tmp / "yes.yaml").write_text("batch_size: yes\n")
    (tmp / "twice.yaml").write_text("lr: 1.0e-4\nlr: 2.0e-4\n")
    three = tmp / "three_classes"
    three.mkdir()
    for split in ("train", "dev"):
        (three / f"{split}.tsv").write_text("text\tlabel\nfine film\tpos\nawful film\tneg\nso so\tmeh\n")
    unknown = tmp / "unknown_labels"  # labels 0/1 where the classifier knows LABEL_0 and LABEL_1
    unknown.mkdir()
    for split in ("train", "dev"):
        (unknown / f"{split}.tsv").write_text("text\tlabel\n" + "".join(f"line {i}\t{i % 2}\n" for i in range(20)))
    one = tmp / "one_class"
    one.mkdir()
    for split in ("train", "dev"):
        (one / f"{split}.tsv").write_text("text\tlabel\nfine film\tpos\ngreat film\tpos\n")
    squad = tmp / "bad_squad"
    squad.mkdir()
    context = "Rollo led the raiders."
    for split in ("train", "dev"):
        (squad / f"{split}.json").write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": [
            {"context": context, "qas": [{"id": "q7", "question": "Who led them?", "is_impossible": False,
                                          "answers": [{"text": "Rollo", "answer_start": 5}]}]}]}]}))
    damaged = tmp / "damaged_run"
    damaged.mkdir()
    (damaged / "run.json").write_text("{not json")
    return {"tmp": tmp}


def readonly_dir(tmp: Path) -> Path:
    """A directory nothing can be written under: /sys when running as root (root writes through chmod)."""
    import os

    if os.geteuid() == 0:
        return Path("/sys/minilm-readonly")
    target = tmp / "readonly"
    target.mkdir(exist_ok=True)
    target.chmod(0o555)
    return target / "sub"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_teacher_dir, tokenizer, sentence_teacher):
    tmp = tmp_path_factory.mktemp("cli_inputs")
    _files(tmp)
    # A student directory whose tokenizer has an extra token: not the teacher's vocabulary.
    from helpers.models import tiny_bert

    odd = tmp / "odd_student"
    from transformers import BertModel

    wider = tiny_bert(attn="sdpa").config
    wider.vocab_size += 1  # its own tokenizer fits it, but is not the teacher's
    BertModel(wider).save_pretrained(odd)
    other = type(tokenizer).from_pretrained(tiny_teacher_dir)
    other.add_tokens(["zzzunseenzzz"])
    other.save_pretrained(odd)
    # A model directory without tokenizer files (transformers would build a 5-token tokenizer for it).
    tiny_bert(attn="sdpa").save_pretrained(tmp / "no_tokenizer")
    # A teacher whose weights file was cut off in the middle of a copy.
    import shutil

    shutil.copytree(tiny_teacher_dir, tmp / "truncated")
    weights = tmp / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # Model folders with one file damaged or missing: each is named in the one line, with what to do.
    for name, damage in (("damaged_pooling", lambda d: (d / "1_Pooling" / "config.json").write_text('{"pooling')),
                         ("damaged_sbert", lambda d: (d / "sentence_bert_config.json").write_text("{max_seq")),
                         ("damaged_config", lambda d: (d / "config.json").write_text('{"hidden_size": 3')),
                         ("no_weights", lambda d: (d / "model.safetensors").unlink())):
        shutil.copytree(sentence_teacher, tmp / name)
        damage(tmp / name)
    # A model of a family minilm has no adapter for (ALBERT).
    from transformers import AlbertConfig, AlbertModel

    AlbertModel(AlbertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, embedding_size=16)).save_pretrained(tmp / "albert")
    tokenizer.save_pretrained(tmp / "albert")
    # A 2-class fine-tuned checkpoint.
    tiny_bert(attn="sdpa", num_labels=2).save_pretrained(tmp / "two_classes_model")
    tokenizer.save_pretrained(tmp / "two_classes_model")
    return tmp


def distill_args(teacher, tmp, *extra):
    return ["distill", "--teacher", teacher, "--data", str(tmp / "good.txt"), "--output-dir", str(tmp / "out"),
            "--max-steps", "2", "--batch-size", "4", "--max-length", "32", "--cache-dir", str(tmp / "cache"),
            "--student-layers", "1", "--student-hidden", "32", "--student-heads", "4", *extra]


# (id, argument builder(teacher, tmp), the words the message must hold): each is a row of docs/errors.md.
CASES = [
    ("missing data file", lambda t, d: distill_args(t, d, "--data", str(d / "nope.txt")), ('data file', 'not found')),
    ("empty corpus", lambda t, d: distill_args(t, d, "--data", str(d / "empty.txt")), ('corpus', 'empty')),
    ("non-UTF-8 text", lambda t, d: distill_args(t, d, "--data", str(d / "latin1.txt")), ('UTF-8',)),
    ("TSV row with wrong column count", lambda t, d: distill_args(t, d, "--data", str(d / "cols.tsv")),
     ('cols.tsv:3', '2 columns', '3')),
    ("unknown example mode", lambda t, d: distill_args(t, d, "--examples", "sentences"),
     ('examples', 'line', 'packed', 'sentences')),
    ("unknown document boundary", lambda t, d: distill_args(t, d, "--document-boundary", "chapter"),
     ('document_boundary', 'chapter')),
    ("unknown packaged teacher", lambda t, d: distill_args("packaged:bert-huge", d), ('packaged', 'bert-huge')),
    ("missing teacher directory", lambda t, d: distill_args("./no/such/teacher", d), ('model directory', 'not found')),
    ("teacher of a family without an adapter", lambda t, d: distill_args(str(d / "albert"), d),
     ("no adapter", "albert", "supported", "RoBERTa", "MPNet", "DeBERTa", "ModernBERT", "DistilBERT")),
    ("v1 with unequal head counts", lambda t, d: distill_args(t, d, "--student-hidden", "32", "--student-heads", "2"),
     ('v1', 'head counts', 'minilmv2')),
    ("--minilm-variant v2 with another objective", lambda t, d: distill_args(t, d, "--objective", "tinybert",
                                                                              "--minilm-variant", "v2"),
     ('--minilm-variant v2', 'minilmv2', 'tinybert')),
    ("relation heads do not divide the teacher", lambda t, d: distill_args(t, d, "--objective", "minilmv2",
                                                                            "--relation-heads", "6"),
     ('relation_heads 6', 'teacher', '32')),
    ("student wider than the relation split allows",
     lambda t, d: distill_args(t, d, "--objective", "minilmv2", "--relation-heads", "8", "--student-hidden", "20",
                               "--student-heads", "4"), ('relation_heads 8', 'student', '20')),
    ("relation heads under the minilm objective", lambda t, d: distill_args(t, d, "--relation-heads", "8"),
     ("relation_heads 8", "--objective minilm does not read it", "minilmv2")),
    ("student hidden not divisible by its heads", lambda t, d: distill_args(t, d, "--student-hidden", "30"),
     ('student_hidden 30', 'student_heads 4')),
    ("teacher layer that does not exist", lambda t, d: distill_args(t, d, "--teacher-layer", "7"),
     ('layer 7',)),
    ("sequence longer than the position embeddings", lambda t, d: distill_args(t, d, "--max-length", "256"),
     ('max_length 256', '128 positions')),
    ("teacher cache asked for an objective with views of its own",
     lambda t, d: distill_args(t, d, "--objective", "distilbert", "--teacher-cache", "on"),
     ("teacher_cache on", "distilbert", "--teacher-cache auto")),
    ("unknown embedding output", lambda t, d: distill_args(t, d, "--embedding-output", "student"),
     ("embedding_output", "teacher, own", "'student'")),
    ("teacher and student tokenizers differ",
     lambda t, d: distill_args(t, d, "--student-init", str(d / "odd_student")), ('tokenizers differ',)),
    ("output directory holds a different run",
     lambda t, d: distill_args(t, d, "--output-dir", str(d / "other_run")), ('different run', '--overwrite')),
    ("output directory holds other files",
     lambda t, d: distill_args(t, d, "--output-dir", str(d / "not_a_run")), ('not_a_run', 'files')),
    ("unknown objective", lambda t, d: distill_args(t, d, "--objective", "pkd"), ('objective', 'minilm', 'pkd')),
    ("distilbert masked-LM terms asked for on a teacher without that head",
     lambda t, d: distill_args(t, d, "--objective", "distilbert", "--distilbert-mlm", "on"),
     ('distilbert_mlm', 'masked-LM head')),
    ("tinybert layer map naming a layer the teacher lacks",
     lambda t, d: distill_args(t, d, "--objective", "tinybert", "--tinybert-layer-map", "5"),
     ('tinybert_layer_map', 'layer 5')),
    ("tinybert layer map longer than the student",
     lambda t, d: distill_args(t, d, "--objective", "tinybert", "--tinybert-layer-map", "1", "2"),
     ('tinybert_layer_map', '2', '1')),
    ("teacher without tokenizer files", lambda t, d: distill_args(str(d / "no_tokenizer"), d),
     ('5 tokens', '30522', 'tokenizer')),
    ("model to fine-tune without tokenizer files",
     lambda t, d: ["finetune", "--model", d / "no_tokenizer", "--task", "sst2", "--task-dir", d / "task",
                   "--skip-bad-rows", "--output-dir", d / "out"],
     ('5 tokens', '30522', 'tokenizer')),
    ("weights file cut off", lambda t, d: distill_args(str(d / "truncated"), d),
     ('weights file', 'truncated/model.safetensors', 'damaged', 'bytes', 'copy the model folder')),
    ("weights file missing", lambda t, d: distill_args(str(d / "no_weights"), d),
     ('no_weights', 'weights are missing', 'copy the model folder')),
    ("damaged sentence-transformers pooling config", lambda t, d: distill_args(str(d / "damaged_pooling"), d),
     ('damaged_pooling/1_Pooling/config.json', 'not valid JSON', 'copy the model folder')),
    ("damaged sentence_bert_config.json", lambda t, d: distill_args(str(d / "damaged_sbert"), d),
     ('damaged_sbert/sentence_bert_config.json', 'not valid JSON')),
    ("damaged config.json", lambda t, d: distill_args(str(d / "damaged_config"), d),
     ('damaged_config/config.json', 'not valid JSON')),
    ("teacher directory that is not there, named like a hub id",
     lambda t, d: distill_args("nonexistent/dir", d), ("nonexistent/dir", "no such directory")),
    ("zero batch size", lambda t, d: distill_args(t, d, "--batch-size", "0"), ('batch_size', '>= 1', '0')),
    ("negative learning rate", lambda t, d: distill_args(t, d, "--lr", "-0.0001"), ('lr', '> 0', '-0.0001')),
    ("learning rate of 0", lambda t, d: distill_args(t, d, "--lr", "0"), ('lr', '> 0', 'trains nothing')),
    ("NaN learning rate", lambda t, d: distill_args(t, d, "--lr", "nan"), ('lr', 'finite', 'nan')),
    ("zero log interval", lambda t, d: distill_args(t, d, "--log-every", "0"), ('log_every', '>= 1')),
    ("zero evaluation interval", lambda t, d: distill_args(t, d, "--eval-every", "0"), ('eval_every', '>= 1')),
    ("negative checkpoint interval", lambda t, d: distill_args(t, d, "--save-every", "-1"),
     ('save_every', '>= 0', '-1')),
    ("zero query chunk", lambda t, d: distill_args(t, d, "--query-chunk", "0"), ('query_chunk', '>= 1')),
    ("dropout of 1", lambda t, d: distill_args(t, d, "--dropout", "1"), ('dropout', '< 1')),
    ("betas with one value", lambda t, d: distill_args(t, d, "--betas", "0.9"), ('betas', 'two values')),
    ("negative FFN size", lambda t, d: distill_args(t, d, "--student-ffn", "-64"), ('student_ffn', '>= 1', '-64')),
    ("FFN size 0", lambda t, d: distill_args(t, d, "--student-ffn", "0"), ('student_ffn', '>= 1', '0')),
    ("negative seed", lambda t, d: distill_args(t, d, "--seed", "-1"), ('seed', '4294967295', '-1')),
    ("keeping 0 checkpoints", lambda t, d: distill_args(t, d, "--keep", "0"), ('keep', '>= 1')),
    ("temperature 0", lambda t, d: distill_args(t, d, "--temperature", "0"), ('temperature', '> 0')),
    ("warm-up longer than the run", lambda t, d: distill_args(t, d, "--warmup-steps", "10"),
     ('warmup_steps 10', '2 steps')),
    ("warm-up longer than a fine-tuning run of whole epochs",
     lambda t, d: ["finetune", "--model", t, "--task", "mine", "--task-dir", d / "three_classes", "--text-columns",
                   "text", "--label-column", "label", "--batch-size", "2", "--epochs", "1", "--warmup-steps", "5",
                   "--output-dir", d / "out"], ('warmup_steps 5', '1 steps')),
    ("student larger than its teacher", lambda t, d: distill_args(t, d, "--student-layers", "100000"),
     ('larger than its teacher',)),
    ("misspelt student init", lambda t, d: distill_args(t, d, "--student-init", "teachr"),
     ('student_init', 'teachr')),
    ("read-only output directory (distill)",
     lambda t, d: distill_args(t, d, "--output-dir", readonly_dir(d) / "out"), ('cannot write', 'output_dir')),
    ("read-only cache directory (distill)",
     lambda t, d: distill_args(t, d, "--cache-dir", readonly_dir(d) / "cache"), ('cannot write', 'cache_dir')),
    ("read-only output directory (student)",
     lambda t, d: ["student", "--teacher", t, "--output-dir", readonly_dir(d) / "s", "--student-layers", "1",
                   "--student-hidden", "32", "--student-heads", "4"], ('cannot write', 'output_dir')),
    ("read-only output directory (finetune)",
     lambda t, d: ["finetune", "--model", t, "--task", "sst2", "--task-dir", d / "task", "--skip-bad-rows",
                   "--output-dir", readonly_dir(d) / "ft"], ('cannot write', 'output_dir')),
    ("read-only output directory (evaluate)",
     lambda t, d: ["evaluate", "--model", d / "two_classes_model", "--task", "sst2", "--task-dir", d / "task",
                   "--skip-bad-rows", "--output", readonly_dir(d) / "ev"], ('cannot write', '--output')),
    ("read-only output directory (bench)",
     lambda t, d: ["bench", "--teacher", t, "--output", readonly_dir(d) / "bench.json"],
     ('cannot write', '--output')),
    ("read-only output directory (report)",
     lambda t, d: ["report", "--runs", d / "other_run", "--output", readonly_dir(d) / "report"],
     ('cannot write', '--output')),
    ("damaged run.json", lambda t, d: distill_args(t, d, "--output-dir", d / "damaged_run"),
     ('damaged', 'run.json', '--overwrite')),
    ("bench output is a directory", lambda t, d: ["bench", "--teacher", t, "--speedup", "1.2", "--output", d],
     ("--output", "is a directory", "bench.json")),
    ("student output is a file", lambda t, d: ["student", "--teacher", t, "--output-dir", d / "good.txt"],
     ("output_dir", "not a directory")),
    ("read-only output directory (export)",
     lambda t, d: ["export", "--model", t, "--output-dir", readonly_dir(d) / "ex"], ('cannot write', 'output_dir')),
    ("empty OpenVINO calibration text",
     lambda t, d: ["export", "--model", t, "--output-dir", d / "ov_ex", "--openvino", "--quantize", "int8",
                   "--calibration-data", d / "empty.txt"], ("calibration_data", "holds no text")),
    ("evaluating a split none of whose labels the model knows",
     lambda t, d: ["evaluate", "--model", d / "two_classes_model", "--task", "mytask", "--task-dir",
                   d / "unknown_labels", "--text-columns", "text", "--label-column", "label"],
     ("none of its labels", "LABEL_0", "'0' (10)")),
    ("evaluating with batch size 0",
     lambda t, d: ["evaluate", "--model", d / "two_classes_model", "--task", "sst2", "--task-dir", d / "task",
                   "--batch-size", "0"], ('batch_size', '>= 1', '0')),
    ("evaluating past the model's positions",
     lambda t, d: ["evaluate", "--model", d / "two_classes_model", "--task", "sst2", "--task-dir", d / "task",
                   "--max-length", "512"], ('max_length 512', '128 positions')),
    ("evaluating a classifier with --regression",
     lambda t, d: ["evaluate", "--model", d / "two_classes_model", "--task", "sst2", "--task-dir", d / "task",
                   "--regression"], ('--regression', 'classifier')),
    ("fine-tuning a 2-class checkpoint on a 3-class task",
     lambda t, d: ["finetune", "--model", d / "two_classes_model", "--task", "mine", "--task-dir", d / "three_classes",
                   "--text-columns", "text", "--label-column", "label", "--output-dir", d / "out"],
     ('2 output', '3')),
    ("training split with one class",
     lambda t, d: ["finetune", "--model", t, "--task", "mine", "--task-dir", d / "one_class", "--text-columns", "text",
                   "--label-column", "label", "--output-dir", d / "out"], ('one class', 'pos')),
    ("SQuAD answer_start that does not point at its text",
     lambda t, d: ["finetune", "--model", t, "--task", "squad2", "--task-dir", d / "bad_squad", "--max-length", "64",
                   "--doc-stride", "16", "--output-dir", d / "out"],
     ('q7', 'answer_start 5', 'Rollo')),
    ("evaluating a classifier on SQuAD",
     lambda t, d: ["evaluate", "--model", d / "two_classes_model", "--task", "squad2", "--task-dir", d / "bad_squad",
                   "--max-length", "64"], ('question-answering head',)),
    ("YAML yes for a number", lambda t, d: ["distill", "--config", d / "yes.yaml"],
     ('batch_size', 'int', 'boolean')),
    ("YAML key given twice", lambda t, d: ["distill", "--config", d / "twice.yaml"], ("'lr'", 'twice')),
    ("missing config file", lambda t, d: ["distill", "--config", str(d / "nope.yaml")], ('config file', 'not found')),
    ("wrong type in config", lambda t, d: ["distill", "--config", str(d / "bad.yaml")],
     ('student_layers', 'int')),
    ("unknown task", lambda t, d: ["finetune", "--model", t, "--task", "foo", "--output-dir", str(d / "ft")],
     ('unknown task', 'foo')),
    ("unknown label in a task file",
     lambda t, d: ["finetune", "--model", t, "--task", "sst2", "--task-dir", str(d / "task"),
                   "--output-dir", str(d / "ft")], ('train.tsv:4', 'label', '7')),
    ("empty split", lambda t, d: ["finetune", "--model", t, "--task", "sst2", "--task-dir", str(d / "empty_task"),
                                  "--output-dir", str(d / "ft")], ('split', 'empty')),
    ("evaluating a model without a task head",
     lambda t, d: ["evaluate", "--model", t, "--task", "sst2", "--task-dir", str(d / "task")], ('no task head', 'minilm finetune')),
    ("flag given no value", lambda t, d: distill_args(t, d, "--lr"), ('argument --lr', 'expected one argument')),
    ("misspelt command", lambda t, d: ["distil"], ("invalid choice", "'distil'", "distill")),
    ("loss turns NaN or infinite",
     lambda t, d: distill_args(t, d, "--lr", "1e30", "--warmup-steps", "0", "--precision", "fp32",
                               "--save-every", "1", "--max-steps", "20", "--output-dir", str(d / "nan_run")),
     ('loss became', 'last good checkpoint')),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_error(case, inputs, tiny_teacher_dir):
    _, build, words = case
    assert_one_line_error(run_main(*build(tiny_teacher_dir, inputs)), *words)
    assert not (inputs / "out").exists(), "a refused run must leave no output behind"


def test_a_real_process_exits_2_with_one_line(inputs, tiny_teacher_dir):
    result = run_cli(*distill_args(tiny_teacher_dir, inputs, "--data", str(inputs / "nope.txt")))
    assert_one_line_error(result, "not found", str(inputs / "nope.txt"))
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1  # nothing else on stderr


def test_a_missing_directory_in_a_folder_that_exists_is_not_asked_of_the_hub(inputs, tiny_teacher_dir, monkeypatch):
    monkeypatch.chdir(inputs)  # task/ is here: task/nope can only be a directory, mistyped
    line = assert_one_line_error(run_main(*distill_args(tiny_teacher_dir, inputs, "--teacher", "task/nope")),
                                 "model directory not found", "task/nope")
    assert "hub" not in line


@pytest.mark.parametrize("number, code, line", [(signal.SIGINT, 130, "minilm: interrupted"),
                                                (signal.SIGTERM, 143, "minilm: stopped by SIGTERM")])
def test_a_signal_in_the_first_seconds_ends_in_one_line(inputs, tiny_teacher_dir, number, code, line):
    # The first second or two are imports (torch, transformers); a signal then once ended in a traceback.
    command = [sys.executable, "-m", "minilm.cli", *distill_args(tiny_teacher_dir, inputs, "--output-dir",
                                                                 str(inputs / "signalled"))]
    for delay in (0.3, 0.8, 1.5):
        process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(number)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == code and stderr.strip() == line, (delay, process.returncode, stderr[-3000:])


def test_nan_stop_keeps_the_last_good_checkpoint(inputs, tiny_teacher_dir):
    out = inputs / "nan_run"
    if not out.exists():
        run_main(*CASES[-1][1](tiny_teacher_dir, inputs))
    checkpoints = sorted((out / "checkpoints").glob("step-*"))
    assert checkpoints, "the steps before the bad one were checkpointed"
    message = run_main(*CASES[-1][1](tiny_teacher_dir, inputs), "--overwrite").stderr
    step = int(message.split("at step ")[1].split(";")[0])
    assert f"step-{step - 1:08d}" in message  # the checkpoint of the step before is named and kept


def test_errors_doc_lists_every_case():
    rows = {line.split("|")[1].strip(): line for line in ERRORS_DOC.read_text().splitlines() if line.startswith("| ")}
    for name, _, words in CASES:
        assert name in rows, f"docs/errors.md lacks the row for: {name}"
        for word in words:
            assert word.lower() in rows[name].lower(), f"docs/errors.md's row for {name} does not say {word}"


def test_help_explains_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("distill", "finetune", "evaluate", "bench", "report"):
        assert command in result.stdout
    sub = run_cli("distill", "--help")
    assert "--student-layers" in sub.stdout and "--config" in sub.stdout


def test_version_prints_the_packages_version_at_every_level():
    """`minilm --version` and `minilm COMMAND --version` print the installed version (pyproject.toml's), nothing
    else; no setting takes the flag's name."""
    from importlib.metadata import version

    for args in (("--version",), ("distill", "--version"), ("export", "--version")):
        result = run_cli(*args)
        assert result.returncode == 0 and result.stdout.strip() == f"minilm {version('minilm')}", result
