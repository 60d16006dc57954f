"""Shapes by speed (`measure.shape_speed`): the candidates, the choice from (stubbed) timings, the fallback when a
shape's own timing falls short, one line when nothing reaches the speed-up (naming the measured speed-up), the
table as a typed value that survives JSON, and one real int8 export and timing of a tiny graph (no speed asserted:
timings are benchmarks' business)."""

from __future__ import annotations

import json

import pytest

from minilm.config.sections import Student
from minilm.errors import MiniLMError
from minilm.measure import shape_speed
from minilm.models.speed_table import SpeedTable
from tests.helpers.models import tiny_bert
from tests.helpers.families import family_config


def test_candidate_widths_are_whole_heads_of_the_teachers_size():
    import transformers

    config = transformers.BertConfig(hidden_size=384, num_attention_heads=12, intermediate_size=1536)
    assert shape_speed.candidate_widths(config) == [384, 288, 256, 192, 128, 96, 64]
    assert shape_speed.shape_of(config, 2, 256) == shape_speed.Shape(2, 256, 8, 1024)  # FFN at the teacher's ratio


@pytest.fixture
def stub_timings(monkeypatch, tmp_path):
    """Graphs that are not exported, and a time per call of 0.1 ms + layers x width x 1e-6 ms: the teacher (3x32)
    takes 0.196 ms; the static student 0.15 ms (1.31x). `measured` overrides what a full-shape timing says (the
    prediction's check)."""
    measured = {}

    def fake_graph(model, directory, name):
        path = directory / f"{name}.onnx"
        path.write_text(json.dumps({"layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size}))
        return path

    def fake_static(config, shape, directory):
        path = directory / "static.onnx"
        path.write_text(json.dumps({"layers": 0, "hidden": shape.hidden}))
        return path

    def cost(path):
        shape = json.loads(path.read_text())
        return 1.5e-4 if shape["layers"] == 0 else 1e-4 + shape["layers"] * shape["hidden"] * 1e-6

    def fake_time(paths, inputs):
        times = {name: cost(path) for name, path in paths.items()}
        if "static" in paths:
            times["static"] = measured.get("static", times["static"])
        if "student" in paths:
            shape = json.loads(paths["student"].read_text())
            times["student"] = measured.get((shape["layers"], shape["hidden"]), times["student"])
        return times

    monkeypatch.setattr(shape_speed, "int8_graph", fake_graph)
    monkeypatch.setattr(shape_speed, "static_graph", fake_static)
    monkeypatch.setattr(shape_speed, "time_graphs", fake_time)
    return measured


def test_the_largest_shape_reaching_the_speedup_is_chosen(stub_timings):
    config = family_config("bert")  # 3 layers, 32 wide, 4 heads of 8, FFN 64
    lines = []
    table = shape_speed.time_shapes(config, 1.5, say=lines.append)
    # 1.5x of 0.196 ms: at most 0.1307 ms, i.e. layers x width <= 30.7: 1x24 (24) beats 3x8 (24) by its larger
    # blocks, and 1x32 (32) is too slow
    shape = table.chosen
    assert (shape.layers, shape.hidden, shape.heads, shape.ffn) == (1, 24, 3, 48)
    assert len(table.rows) == 3 * len(shape_speed.candidate_widths(config)) + 1  # and the static student
    static = table.rows[-1]
    assert (static.shape.layers, static.block_parameters) == (0, 0) and static.measured_speedup == pytest.approx(
        0.196 / 0.15)
    assert any(line.startswith("chosen: 1x24") for line in lines) and any("| 1x24 *" in line for line in lines)
    again = SpeedTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert again == table and again.format() == table.format()


def test_a_shape_whose_own_timing_falls_short_gives_way_to_the_next(stub_timings):
    stub_timings[(1, 24)] = 1.0  # the full timing of 1x24 says it is slow after all
    table = shape_speed.time_shapes(family_config("bert"), 1.5, say=lambda line: None)
    assert (table.chosen.layers, table.chosen.hidden) == (1, 16)  # the next largest blocks that reach 1.5x
    assert [r.measured_speedup for r in table.rows if (r.shape.layers, r.shape.hidden) == (1, 24)][0] < 1


def test_a_speedup_no_shape_reaches_is_one_line_naming_the_measured_speed(stub_timings):
    stub_timings[(1, 8)] = 1.96e-4 / 1.04  # measured beside the teacher: 1.04x, where 1x8 predicts 1.81x
    table = shape_speed.time_shapes(family_config("bert"), 1.75, say=lambda line: None)
    assert table.chosen is None  # only 1x8 was predicted to reach 1.75x, and its own graph did not
    assert table.verdict().startswith("no student shape reaches --speedup 1.75 on this CPU: the fastest, 1x8, answers "
                                      "1.04x") and "(measured)" in table.verdict()
    with pytest.raises(MiniLMError, match="no student shape reaches --speedup 50"):
        from minilm.models.plan import TeacherId, plan_student
        from tests.helpers.models import tiny_bert

        teacher = tiny_bert(layers=3)
        plan_student(Student(speedup=50), teacher, TeacherId.of("t", teacher.config, {}), None,
                     shape_speed.time_shapes(teacher.config, 50, say=lambda line: None))


def test_a_tiny_graph_exports_int8_and_times(tmp_path):
    """The real path once: a random 1-layer BERT exported fused and int8 for this CPU, timed by onnxruntime."""
    pytest.importorskip("onnxruntime")
    config = family_config("bert")
    model = shape_speed.random_model(config, shape_speed.shape_of(config, 1, 16))
    path = shape_speed.int8_graph(model, tmp_path, "tiny")
    from minilm.deploy.quantize import int8_operators

    assert path.is_file() and int8_operators(path)
    seconds = shape_speed.time_graphs({"tiny": path}, shape_speed.sample_inputs(model))
    assert 0 < seconds["tiny"] < 1


def test_a_static_student_is_chosen_where_no_student_with_layers_is_fast_enough(stub_timings):
    stub_timings["static"] = 5e-5  # 3.92x the teacher; no shape with layers predicts more than 1.81x
    table = shape_speed.time_shapes(family_config("bert"), 3, say=lambda line: None)
    assert table.chosen == shape_speed.Shape(0, 32, 0, 0)  # the default static width, at most the teacher's
    assert table.verdict().startswith("chosen: 0x32")
    from minilm.models.plan import TeacherId, plan_student

    teacher = tiny_bert(layers=3)
    with pytest.raises(MiniLMError, match="pass the run's text and tokenizer"):  # a static start reads the text
        plan_student(Student(speedup=3), teacher, TeacherId.of("t", teacher.config, {}), None, table)
