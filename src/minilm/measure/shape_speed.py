"""Student shapes chosen by measured speed (`--speedup N`): the largest student whose int8 ONNX graph answers at
least N times as fast as its teacher's, at batch 1 on the CPU this runs on.

Random weights time a shape as well as trained ones, so no student is trained to be timed. Each candidate width
(whole heads of the teacher's head size, from the teacher's width down to a sixth of it; FFN at the teacher's
ratio) is exported as `minilm export` would export it (fused where onnxruntime fuses the family, int8 for this CPU)
at one layer and at the teacher's depth, and timed at batch 1 on one thread, every graph in turn, round after round,
each graph's best round kept. A layer costs the same at every depth, so a shape of L layers is timed as the
one-layer graph plus L - 1 layers' share of the difference. The largest shape predicted to reach N (the most
parameters in its blocks: embeddings are lookups, blocks are the time) is then exported itself and timed beside
the teacher; if it falls short, the next largest is tried.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from minilm.errors import MiniLMError, require
from minilm.models.architectures import Shape, family_of

SEQUENCE_TOKENS = 32  # one request of a sentence or two: SST-2 dev sentences average about 25 tokens
WIDTH_FRACTIONS = (1, 3 / 4, 2 / 3, 1 / 2, 1 / 3, 1 / 4, 1 / 6)
ROUNDS, CALLS = 5, 30
TRIES = 3  # largest shapes timed in full before giving up on the prediction


@dataclass
class Candidate:
    shape: Shape
    parameters: int  # the whole encoder's, embeddings included
    block_parameters: int  # its transformer blocks' (what "largest" ranks by: embeddings cost lookups, not time)
    predicted_ms: float
    predicted_speedup: float
    measured_speedup: float | None = None

    def row(self) -> dict:
        return {**asdict(self.shape), "parameters": self.parameters, "block_parameters": self.block_parameters,
                "predicted_ms": self.predicted_ms,
                "predicted_speedup": self.predicted_speedup, "measured_speedup": self.measured_speedup}


def candidate_widths(teacher_config) -> list[int]:
    """Widths of whole heads of the teacher's head size, from the teacher's width down to a sixth of it."""
    family = family_of(teacher_config)
    hidden, size = family.shape(teacher_config).hidden, family.config_head_size(teacher_config)
    widths = {max(size, int(hidden * f) // size * size) for f in WIDTH_FRACTIONS}
    return sorted(widths, reverse=True)


def shape_of(teacher_config, layers: int, hidden: int) -> Shape:
    family = family_of(teacher_config)
    teacher = family.shape(teacher_config)
    return Shape(layers, hidden, hidden // family.config_head_size(teacher_config),
                 hidden * teacher.ffn // teacher.hidden)


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


def choose_shape(teacher_config, speedup: float, say=print, work: str | None = None) -> tuple[Shape, list[dict]]:
    """The largest student shape whose int8 graph is at least `speedup` times as fast as the teacher's at batch 1
    on this CPU, and the table of every candidate (`Candidate.row`). One line when none reaches it."""
    from minilm.deploy.onnx_model import require_deploy_packages
    from minilm.models.students import encoder_size

    require_deploy_packages()
    require(speedup > 1, f"--speedup {speedup}: a student is timed against its teacher, so it must be above 1")
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
        timed = time_graphs({f"{k[0]}x{k[1]}": v for k, v in paths.items()}, inputs)
        base = timed[f"{teacher.layers}x{teacher.hidden}"]
        candidates = []
        for hidden in widths:
            one, full = timed[f"1x{hidden}"], timed[f"{teacher.layers}x{hidden}"]
            per_layer = (full - one) / max(1, teacher.layers - 1)
            sizes = [encoder_size(family.student_config(teacher_config, shape_of(teacher_config, n, hidden), 0.0))
                     for n in (1, 2)]
            for layers in range(1, teacher.layers + 1):
                shape = shape_of(teacher_config, layers, hidden)
                seconds = one + (layers - 1) * per_layer
                per_block = sizes[1] - sizes[0]
                candidates.append(Candidate(shape, sizes[0] + (layers - 1) * per_block, layers * per_block,
                                            seconds * 1e3, base / seconds))
        reaching = sorted((c for c in candidates if c.predicted_speedup >= speedup and c.shape != teacher),
                          key=lambda c: (-c.block_parameters, -c.shape.layers))
        chosen = None
        for candidate in reaching[:TRIES]:
            shape = candidate.shape
            graph = int8_graph(random_model(teacher_config, shape), directory, f"c{shape.layers}x{shape.hidden}")
            both = time_graphs({"teacher": paths[(teacher.layers, teacher.hidden)], "student": graph}, inputs)
            candidate.measured_speedup = both["teacher"] / both["student"]
            if candidate.measured_speedup >= speedup:
                chosen = candidate
                break
    rows = [c.row() for c in candidates]
    for line in format_shapes(rows, speedup).splitlines():
        say(line)
    if chosen is None:
        fastest = max(candidates, key=lambda c: c.predicted_speedup)
        raise MiniLMError(f"no student shape reaches --speedup {speedup:g} on this CPU: the fastest, "
                          f"{fastest.shape.layers}x{fastest.shape.hidden}, answers {fastest.predicted_speedup:.1f}x "
                          "as fast as the teacher's int8 graph; ask for less, or give the shape flags")
    say(f"chosen: {chosen.shape.layers}x{chosen.shape.hidden}, {chosen.shape.heads} heads, FFN {chosen.shape.ffn} "
        f"({chosen.measured_speedup:.2f}x the teacher's int8 graph, measured)")
    return chosen.shape, rows


def format_shapes(rows: list[dict], speedup: float | None = None) -> str:
    """The candidates as a Markdown table, largest first; the shapes reaching `speedup` marked."""
    lines = ["| shape | heads | FFN | parameters | in blocks | int8 ms (batch 1) | x teacher int8 | measured |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in sorted(rows, key=lambda r: (-r["block_parameters"], -r["layers"])):
        mark = " *" if speedup is not None and row["predicted_speedup"] >= speedup else ""
        measured = f"{row['measured_speedup']:.2f}x" if row["measured_speedup"] is not None else ""
        lines.append(f"| {row['layers']}x{row['hidden']}{mark} | {row['heads']} | {row['ffn']} | "
                     f"{row['parameters'] / 1e6:.1f}M | {row['block_parameters'] / 1e6:.2f}M | "
                     f"{row['predicted_ms']:.2f} | {row['predicted_speedup']:.2f}x | {measured} |")
    return "\n".join(lines)


SHAPES_FILE = "student_shapes.json"


def student_by_speed(student, teacher_config, output_dir: str | Path, say=print):
    """`student` (a `Student` section) with the shape `--speedup` chooses filled in, the table saved to
    `output_dir/student_shapes.json`; a run resumed reads the shape it chose before (timings vary between runs, a
    run's student must not). A section without `speedup` is returned as it is."""
    import json
    from dataclasses import replace

    if student.speedup is None:
        return student
    record = Path(output_dir) / SHAPES_FILE
    saved = json.loads(record.read_text()) if record.is_file() else None
    if saved is not None and saved.get("speedup") == student.speedup:
        shape = Shape(**saved["chosen"])
        say(f"student shape {shape.layers}x{shape.hidden} as chosen for --speedup {student.speedup:g} before "
            f"({record})")
    else:
        shape, rows = choose_shape(teacher_config, student.speedup, say)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"speedup": student.speedup, "chosen": asdict(shape), "candidates": rows,
                                      "sequence_tokens": SEQUENCE_TOKENS, "threads": 1}, indent=1))
    return replace(student, student_layers=shape.layers, student_hidden=shape.hidden, student_heads=shape.heads,
                   student_ffn=shape.ffn, speedup=None)
