"""Run directories that cannot be corrupted, faults met mid-run, and the gaps a new user hits at once.

Each test is a case of docs/errors.md ("Runs, resumes and faults" and "What a user gets"), met through the
command line as a user meets it (in this process through `minilm.cli.main`, or in a subprocess where a
second process or the real stderr matters)."""

from __future__ import annotations

import json

from helpers.cli import ok, run_main


def test_student_command_takes_a_model_directory(tiny_teacher_dir, tmp_path):
    ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "first", "--student-layers", "1",
                "--student-hidden", "32", "--student-heads", "4"))
    ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "again", "--student-init",
                tmp_path / "first"))
    assert json.loads((tmp_path / "again" / "config.json").read_text())["num_hidden_layers"] == 1


def test_a_narrower_student_is_pruned_from_its_teacher_on_the_given_text(tiny_teacher_dir, corpus, tmp_path):
    """Whole heads of the teacher's size (8) and half its width: `auto` prunes, measuring on --data, and every
    kept channel of the student's word embeddings is one of the teacher's columns."""
    import torch
    from transformers import AutoModel

    result = ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "s", "--student-layers",
                         "1", "--student-hidden", "16", "--data", corpus))
    assert "pruned from teacher layers 2" in result.stdout and "16 of 32 channels, 2 of 4 heads" in result.stdout
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]) == (1, 16, 2)
    teacher, student = AutoModel.from_pretrained(tiny_teacher_dir), AutoModel.from_pretrained(tmp_path / "s")
    t_words, s_words = teacher.embeddings.word_embeddings.weight, student.embeddings.word_embeddings.weight
    kept = [next(k for k in range(32) if torch.equal(s_words[:, c], t_words[:, k])) for c in range(16)]
    assert kept == sorted(set(kept))  # distinct teacher channels, in the teacher's order


def test_a_student_init_model_is_trained_as_it_is_and_other_shape_flags_are_refused(tiny_teacher_dir, tmp_path):
    from helpers.cli import assert_one_line_error

    ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "first", "--student-layers", "1",
                "--student-hidden", "32"))
    result = run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "again", "--student-init",
                      tmp_path / "first", "--student-layers", "2")
    assert_one_line_error(result, "1x32", "--student-layers 2", "leave out")
    assert not (tmp_path / "again").exists()


def test_a_student_init_model_larger_than_its_teacher_is_refused(tiny_teacher_dir, tmp_path):
    """The size rule holds for every way a student is made: a 6x384 model as the student of a 2x32 teacher."""
    from helpers.cli import assert_one_line_error

    result = run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "s", "--student-init",
                      "packaged:all-MiniLM-L6-v2")
    assert_one_line_error(result, "larger than its teacher")


def test_speedup_beside_shape_flags_is_one_line(tiny_teacher_dir, tmp_path):
    from helpers.cli import assert_one_line_error

    result = run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "s", "--speedup", "3",
                      "--student-hidden", "16")
    assert_one_line_error(result, "--speedup", "--student-hidden")
    assert_one_line_error(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "s",
                                   "--speedup", "0.5"), "speedup")


def test_a_student_pruning_cannot_make_is_one_line(tiny_teacher_dir, corpus, tmp_path):
    from helpers.cli import assert_one_line_error

    wider = run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "w", "--student-hidden",
                     "48", "--student-layers", "1", "--student-init", "prune", "--data", corpus)
    assert_one_line_error(wider, "larger than its teacher")
    odd = run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "o", "--student-hidden",
                   "20", "--student-layers", "1")
    assert_one_line_error(odd, "student_hidden 20", "head", "8")


def test_a_student_by_speed_keeps_its_shape_table(sentence_teacher, tmp_path, monkeypatch):
    """`minilm student --speedup N` of a sentence-transformers teacher: the chosen shape, saved in the teacher's
    layout, with student_shapes.json beside it (graphs and timings stubbed: 0.1 ms + layers x width x 1e-6 ms)."""
    import json

    from minilm.measure import shape_speed

    def fake_graph(model, directory, name):
        path = directory / f"{name}.json"
        path.write_text(json.dumps([model.config.num_hidden_layers, model.config.hidden_size]))
        return path

    monkeypatch.setattr(shape_speed, "int8_graph", fake_graph)
    monkeypatch.setattr(shape_speed, "static_graph", lambda config, shape, directory: fake_graph(
        type("Static", (), {"config": type("C", (), {"num_hidden_layers": 4, "hidden_size": 32})})(), directory,
        "static"))  # timed as slow as a 4x32 student: never the fastest here
    monkeypatch.setattr(shape_speed, "time_graphs", lambda paths, inputs: {
        name: 1e-4 + 1e-6 * (lambda s: s[0] * s[1])(json.loads(p.read_text())) for name, p in paths.items()})
    ok(run_main("student", "--teacher", sentence_teacher, "--output-dir", tmp_path / "s", "--speedup", "1.2",
                "--student-init", "random"))
    record = json.loads((tmp_path / "s" / "student_shapes.json").read_text())
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (record["chosen"]["layers"], 32) == (1, 32)
    assert (tmp_path / "s" / "modules.json").is_file()


def test_a_classifier_teachers_student_keeps_its_head_and_an_auto_random_start_says_why(tokenizer, corpus, tmp_path):
    """A teacher fine-tuned on a task gives a student with its head (sliced as the student is pruned); a shape that
    can neither copy nor be pruned starts at random, said in one line."""
    import torch
    from helpers.models import tiny_bert
    from transformers import AutoModelForSequenceClassification

    teacher = tiny_bert(num_labels=3, seed=5)
    teacher.save_pretrained(tmp_path / "classifier")
    tokenizer.save_pretrained(tmp_path / "classifier")
    result = ok(run_main("student", "--teacher", tmp_path / "classifier", "--output-dir", tmp_path / "s",
                         "--student-layers", "1", "--student-hidden", "16", "--data", corpus))
    student = AutoModelForSequenceClassification.from_pretrained(tmp_path / "s")
    assert student.config.num_labels == 3 and "pruned from teacher layers 2" in result.stdout
    kept = student.config.minilm_plan["kept"]["hidden"]
    from minilm.models.plan import mask_indices

    channels = torch.tensor(mask_indices(kept))
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight[:, channels])  # its head, sliced
    wide = ok(run_main("student", "--teacher", tmp_path / "classifier", "--output-dir", tmp_path / "w",
                       "--student-layers", "1", "--student-hidden", "32", "--student-ffn", "128"))
    assert "starts from random weights" in wide.stdout and "FFN 128 > 64" in wide.stdout
