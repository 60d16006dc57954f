"""Student shapes chosen by measured speed (`--speedup N`): the largest student whose int8 ONNX graph answers at
least N times as fast as its teacher's, at batch 1 on the CPU this runs on.

Random weights time a shape as well as trained ones, so no student is trained to be timed. Each candidate width
(whole heads of the teacher's head size, from the teacher's width down to a sixth of it; FFN at the teacher's
ratio) is exported as `minilm export` would export it (fused where onnxruntime fuses the family, int8 for this CPU)
at one layer and at the teacher's depth, and timed at batch 1 on one thread, every graph in turn, round after round,
each graph's best round kept. A layer costs the same at every depth, so a shape of L layers is timed as the
one-layer graph plus L - 1 layers' share of the difference. A static student (0 layers: a lookup and a mean,
`models.static`) is timed too, its float32 graph beside the others, as the fastest row. The largest shape
predicted to reach N (the most parameters in its blocks: embeddings are lookups, blocks are the time) is then
exported itself and timed beside
the teacher; if it falls short, the next largest is tried. The result is a `models.speed_table.SpeedTable`; what
to do with it (a plan, a table printed) is its reader's.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from minilm.config.sections import Student
from minilm.models.architectures import Shape, family_of
from minilm.models.plan import student_shape
from minilm.models.speed_table import SpeedRow, SpeedTable

SEQUENCE_TOKENS = 32  # one request of a sentence or two: SST-2 dev sentences average about 25 tokens
WIDTH_FRACTIONS = (1, 3 / 4, 2 / 3, 1 / 2, 1 / 3, 1 / 4, 1 / 6)
ROUNDS, CALLS = 5, 30
TRIES = 3  # largest shapes timed in full before giving up on the prediction


def candidate_widths(teacher_config) -> list[int]:
    """Widths of whole heads of the teacher's head size, from the teacher's width down to a sixth of it."""
    family = family_of(teacher_config)
    hidden, size = family.shape(teacher_config).hidden, family.head_size(teacher_config)
    widths = {max(size, int(hidden * f) // size * size) for f in WIDTH_FRACTIONS}
    return sorted(widths, reverse=True)


def shape_of(teacher_config, layers: int, hidden: int | None) -> Shape:
    """A candidate's shape: `layers` x `hidden`, heads and FFN as a new student of that size takes them (0 layers: a
    static student, `hidden` None its default width)."""
    return student_shape(Student(student_layers=layers, student_hidden=hidden), teacher_config)


def random_model(teacher_config, shape: Shape):
    """A model of `shape` with random weights and eager attention (what the fused export traces)."""
    from transformers import AutoModel

    family = family_of(teacher_config)
    config = family.student_config(teacher_config, shape, 0.0)
    config.architectures = None
    torch.manual_seed(0)
    return AutoModel.from_config(config, attn_implementation="eager").eval()


def int8_graph(model, directory: Path, name: str) -> Path:
    """`model` exported as `minilm export --quantize int8` would for this CPU (fused where the family fuses); the
    graph's path."""
    from minilm.deploy.cpu_target import host_target
    from minilm.deploy.fusion import fuse, fuses
    from minilm.deploy.onnx_export import export_graph
    from minilm.deploy.quantize import SCHEMES, quantize_int8

    config = model.config
    sample = sample_inputs(model, batch=2)
    sample["attention_mask"][1, -1] = 0  # one padded example keeps the exporters' axes dynamic
    float32, int8 = directory / f"{name}.onnx", directory / f"{name}_int8.onnx"
    fused = False
    if fuses(config):
        try:
            export_graph(model, None, sample, directory / f"{name}_traced.onnx", "torchscript")
            fuse(directory / f"{name}_traced.onnx", float32, config)
            fused = True
        except Exception:  # noqa: BLE001 - the optimizer's own failure: time the plain graph, as export falls back
            fused = False
    if not fused:
        export_graph(model, None, sample, float32, "dynamo")
    quantize_int8(float32, int8, SCHEMES[host_target()[0]], fused=fused)
    return int8


def sample_inputs(model, batch: int = 1, tokens: int = SEQUENCE_TOKENS) -> dict[str, torch.Tensor]:
    from minilm.models.architectures import inputs_for

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (batch, tokens), generator=g)
    return inputs_for(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                              "token_type_ids": torch.zeros_like(ids)})


def time_graphs(paths: dict[str, Path], inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Seconds per call of each graph at batch 1 on one thread: every graph in turn, round after round, each
    round's median call, each graph's best round."""
    from minilm.deploy.onnx_model import session

    sessions = {name: session(path, threads=1) for name, path in paths.items()}
    feeds = {}
    for name, s in sessions.items():
        wanted = {i.name for i in s.get_inputs()}
        feeds[name] = {k: v.numpy().astype(np.int64) for k, v in inputs.items() if k in wanted}
        s.run(None, feeds[name])  # warm-up
    best = {name: float("inf") for name in sessions}
    for _ in range(ROUNDS):
        for name, s in sessions.items():
            calls = []
            for _ in range(CALLS):
                start = time.perf_counter()
                s.run(None, feeds[name])
                calls.append(time.perf_counter() - start)
            best[name] = min(best[name], statistics.median(calls))
    return best


def time_shapes(teacher_config, speedup: float, say=print, work: str | None = None) -> SpeedTable:
    """Every candidate shape timed against the teacher (module docstring), and the largest whose own graph is at
    least `speedup` times as fast as the teacher's at batch 1 on this CPU chosen (None when none is)."""
    from minilm.deploy.onnx_model import require_deploy_packages
    from minilm.train.device_policy import cpu_features

    require_deploy_packages()
    family = family_of(teacher_config)
    teacher = family.shape(teacher_config)
    widths = candidate_widths(teacher_config)
    say(f"timing int8 student shapes against the {teacher.layers}x{teacher.hidden} teacher on this CPU "
        f"(batch 1, {SEQUENCE_TOKENS} tokens, one thread; {2 * len(widths)} graphs) ...")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        directory = Path(tmp)
        paths, inputs = {}, None
        for hidden in widths:
            for layers in sorted({1, teacher.layers}):
                model = random_model(teacher_config, shape_of(teacher_config, layers, hidden))
                inputs = sample_inputs(model) if inputs is None else inputs
                paths[(layers, hidden)] = int8_graph(model, directory, f"s{layers}x{hidden}")
        static = static_shape(teacher_config)
        graphs = {f"{k[0]}x{k[1]}": v for k, v in paths.items()}
        graphs["static"] = static_graph(teacher_config, static, directory)
        timed = time_graphs(graphs, inputs)
        rows = predicted_rows(teacher_config, widths, timed)
        base = timed[f"{teacher.layers}x{teacher.hidden}"]
        rows.append(SpeedRow(static, teacher_config.vocab_size * static.hidden, 0, timed["static"] * 1e3,
                             base / timed["static"], base / timed["static"]))
        table = SpeedTable(speedup, cpu_features()["name"] or "this CPU", SEQUENCE_TOKENS, 1, rows)
        reaching = sorted((r for r in rows if r.predicted_speedup >= speedup and r.shape != teacher),
                          key=lambda r: (-r.block_parameters, -r.shape.layers))
        for row in reaching[:TRIES]:
            shape = row.shape
            if shape.layers > 0:  # a static row was timed whole beside the others already
                graph = int8_graph(random_model(teacher_config, shape), directory, f"c{shape.layers}x{shape.hidden}")
                both = time_graphs({"teacher": paths[(teacher.layers, teacher.hidden)], "student": graph}, inputs)
                row.measured_speedup = both["teacher"] / both["student"]
            if row.measured_speedup >= speedup:
                table.chosen = shape
                break
    say(table.format())
    say(table.verdict())
    return table


def static_shape(teacher_config) -> Shape:
    """The static student a table offers: 0 layers, the default static width."""
    return shape_of(teacher_config, 0, None)


def static_graph(teacher_config, shape: Shape, directory: Path) -> Path:
    """A static student's token-level graph (random vectors; float32: a lookup has no product for int8 to speed up)."""
    from minilm.deploy.onnx_export import export_graph
    from minilm.models.static import StaticConfig, StaticModel

    torch.manual_seed(0)
    model = StaticModel(StaticConfig(vocab_size=teacher_config.vocab_size, hidden_size=shape.hidden,
                                     special_ids=[0])).eval()
    sample = sample_inputs(model, batch=2)
    sample["attention_mask"][1, -1] = 0
    path = directory / "static.onnx"
    export_graph(model, None, sample, path, "dynamo")
    return path


def predicted_rows(teacher_config, widths: list[int], timed: dict[str, float]) -> list[SpeedRow]:
    """Every depth of every width, its time the one-layer graph's plus its share of the full-depth one's."""
    from minilm.models.plan import encoder_size

    family = family_of(teacher_config)
    teacher = family.shape(teacher_config)
    base = timed[f"{teacher.layers}x{teacher.hidden}"]
    rows = []
    for hidden in widths:
        one, full = timed[f"1x{hidden}"], timed[f"{teacher.layers}x{hidden}"]
        per_layer = (full - one) / max(1, teacher.layers - 1)
        sizes = [encoder_size(family.student_config(teacher_config, shape_of(teacher_config, n, hidden), 0.0))
                 for n in (1, 2)]
        per_block = sizes[1] - sizes[0]
        for layers in range(1, teacher.layers + 1):
            seconds = one + (layers - 1) * per_layer
            rows.append(SpeedRow(shape_of(teacher_config, layers, hidden), sizes[0] + (layers - 1) * per_block,
                                 layers * per_block, seconds * 1e3, base / seconds))
    return rows
