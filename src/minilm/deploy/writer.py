"""An export directory written (`layout.py`): the model's files copied, each graph traced, fused, checked, then
made int8, and `export.json` last.

For each level (the token-level graph, and with a sentence pipeline the pooled one): the float32 graph is traced
by TorchScript and fused (`fusion.py`) when the plan says fused, and checked against PyTorch (`checks.py`); a fused
graph that fails (or fails to build) is replaced by the plain graph (the dynamo exporter), said in one line, and a
plain graph that fails is an error. With an int8 scheme (`quantize.py`) the float32 graph is then quantized for
its target CPU and checked; what int8 moved is recorded, not refused.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from minilm.config.sections import SENTENCE_MAX_LENGTH
from minilm.deploy.checks import SAMPLES, Reference, float32_holds, float32_tolerance
from minilm.deploy.cpu_target import host_record
from minilm.deploy.fusion import fuse
from minilm.deploy.layout import EXPORT_FILE, EXPORT_FORMAT, GRAPH_DIR, copy_model_files, graph_file
from minilm.deploy.onnx_export import OUTPUTS, POOLED_INPUTS, POOLED_OUTPUTS, export_graph, export_pooled
from minilm.deploy.onnx_model import session
from minilm.deploy.quantize import Scheme, int8_operators, quantize_int8
from minilm.deploy.serving_choice import choose
from minilm.errors import MiniLMError, require
from minilm.models.sentence import Pipeline, portable_modules

INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")  # a graph's inputs, in its forward's order


@dataclass(frozen=True)
class Plan:
    """What an export writes. graph: "fused" or "plain" (resolved from auto); scheme: int8 for a target CPU, or
    None for float32 only; pipeline: an encoder's sentence pipeline (what its embeddings are checked by), None
    for a model with a task head; pooled: the pooled graph is written too (with the pipeline inside); openvino:
    OpenVINO IR too (`deploy.openvino`), statically quantized on `calibration` (texts) where int8 is asked."""

    head: str | None
    graph: str
    scheme: Scheme | None = None
    pipeline: Pipeline | None = None
    pooled: bool = False
    openvino: bool = False
    calibration: tuple[str, ...] = ()


def write_export(model, tokenizer, inputs: list[str], source: str, source_dir: Path | None, plan: Plan, tmp: Path,
                 say=print) -> dict:
    """Fill `tmp` with the export of `model` (float32, eval mode; loaded with eager attention for a fused plan);
    `inputs`: the inputs it takes; `source_dir`: the model's directory (copied), None for a hub model (its config
    and tokenizer are saved instead). Returns export.json's record."""
    tmp.mkdir(parents=True)
    if source_dir is not None:
        copy_model_files(source_dir, tmp)
        portable_modules(tmp)  # sentence-transformers 5 (its ONNX backend's) reads the modules too
    else:
        model.config.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    (tmp / GRAPH_DIR).mkdir()
    work = tmp / ".work"
    work.mkdir()
    reference = Reference(model, plan.head, tokenizer, inputs, plan.pipeline)
    sample = tokenizer(SAMPLES[:2], padding=True, return_tensors="pt")
    graphs = {}
    for pooled in [False] + ([True] if plan.pooled else []):
        names = list(POOLED_INPUTS) if pooled else [n for n in INPUT_ORDER if n in inputs]
        level = {"level": "sentence" if pooled else "token", "inputs": names,
                 "outputs": list(POOLED_OUTPUTS if pooled else OUTPUTS[plan.head])}

        def trace(path: Path, exporter: str, _pooled=pooled, _names=names) -> None:
            if _pooled:
                export_pooled(model, plan.pipeline, sample, path, exporter)
            else:
                export_graph(model, plan.head, {k: sample[k] for k in _names}, path, exporter)

        float32 = graph_file(pooled)
        graphs[float32] = {**level, "precision": "float32",
                           **float32_graph(tmp / float32, trace, reference, pooled, plan, work, model.config, say)}
        if plan.scheme is not None:
            int8 = graph_file(pooled, plan.scheme.target)
            quantize_int8(tmp / float32, tmp / int8, plan.scheme, fused=bool(graphs[float32]["fusion"]))
            graphs[int8] = {**level, "precision": "int8", "exporter": graphs[float32]["exporter"],
                            "fusion": graphs[float32]["fusion"], "int8": plan.scheme.record(),
                            "int8_operators": int8_operators(tmp / int8),
                            "checks": reference.check(session(tmp / int8), pooled)}
        if plan.openvino:
            graphs.update(openvino_graphs(tmp, float32, graphs[float32], trace, reference, pooled, plan, tokenizer,
                                          work, level))
    shutil.rmtree(work)
    target = plan.scheme.target if plan.scheme else None
    default, pooled_default = graph_file(False, target), graph_file(True, target) if plan.pooled else None
    for name, record in graphs.items():
        record["size_bytes"] = (tmp / name).stat().st_size + (
            (tmp / name).with_suffix(".bin").stat().st_size if name.endswith(".xml") else 0)
    record = {"format": EXPORT_FORMAT, "head": plan.head, "quantize": "int8" if plan.scheme else "none",
              "source": source, "graph": "fused" if graphs[default]["fusion"] else "plain",
              "int8": {**plan.scheme.record(), "why": plan.scheme.why} if plan.scheme else None,
              "pooling": {"pooling": list(plan.pipeline.pooling), "normalize": plan.pipeline.normalize}
              if plan.pooled else None,
              "default": default, "default_pooled": pooled_default, "graphs": graphs,
              "size_bytes": graphs[default]["size_bytes"],
              "checked_on": host_record()}  # the checks of an int8 graph hold for the CPU they ran on
    candidates = [n for n, g in graphs.items() if g["level"] == "sentence" and g["precision"] == "int8"]
    if len(candidates) > 1:  # which serves fastest here, at batch 1 and at batch 32 (`serving_choice`)
        record["serving"] = choose(tmp, candidates, tokenizer, SAMPLES)
    (tmp / EXPORT_FILE).write_text(json.dumps(record, indent=1))
    return record


def openvino_graphs(tmp: Path, float32: str, record: dict, trace, reference: Reference, pooled: bool, plan: Plan,
                    tokenizer, work: Path, level: dict) -> dict:
    """One level's OpenVINO IR, converted from its plain float32 ONNX graph (a fused one is traced again, plain:
    OpenVINO has no onnxruntime operators), checked as every graph is; with int8, its static form quantized on the
    calibration text and checked. Returns their records by path."""
    from minilm.deploy.openvino import OpenVinoGraph, calibration_feeds, convert, ir_file, quantize

    plain = tmp / float32
    if record["fusion"]:
        plain = work / ("plain_pooled.onnx" if pooled else "plain.onnx")
        trace(plain, "dynamo")
    out = {}
    xml = ir_file(pooled)
    convert(plain, tmp / xml)
    checks = reference.check(OpenVinoGraph(tmp / xml), pooled)
    require(float32_holds(checks), f"the OpenVINO float32 {'pooled ' if pooled else ''}graph differs from the PyTorch "
                                   f"model by {checks['max_abs_diff']:.2e}; nothing was written")
    out[xml] = {**level, "precision": "float32", "runtime": "openvino", "exporter": "openvino", "fusion": None,
                "checks": checks}
    if plan.scheme is not None:
        int8 = ir_file(pooled, int8=True)
        feeds = calibration_feeds(tokenizer, list(plan.calibration), SENTENCE_MAX_LENGTH)
        quantize(tmp / xml, tmp / int8, feeds)
        out[int8] = {**level, "precision": "int8", "runtime": "openvino", "exporter": "openvino", "fusion": None,
                     "int8": {"scheme": "static", "calibration_sentences": len(plan.calibration), "by": "nncf"},
                     "checks": reference.check(OpenVinoGraph(tmp / int8), pooled)}
    return out


def float32_graph(path: Path, trace, reference: Reference, pooled: bool, plan: Plan, work: Path, config,
                  say) -> dict:
    """Write the float32 graph of one level to `path`: fused when the plan says so and the fused graph holds,
    else plain. Returns its exporter, fusion counts (None when plain) and checks."""
    what = "pooled graph" if pooled else "graph"
    if plan.graph == "fused":
        try:
            traced = work / "traced.onnx"
            trace(traced, "torchscript")
            counts = fuse(traced, path, config)
            checks = reference.check(session(path), pooled)
            if float32_holds(checks):
                return {"exporter": "torchscript", "fusion": counts, "checks": checks}
            why = f"differs from PyTorch by {checks['max_abs_diff']:.1e}"
        except MiniLMError:
            raise
        except Exception as exc:  # the exporter's or the optimizer's own failure: the plain graph is still there
            why = f"could not be built ({(str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]})"
        say(f"the fused {what} {why}; wrote the plain {what} instead")
    trace(path, "dynamo")
    checks = reference.check(session(path), pooled)
    require(float32_holds(checks), f"the exported float32 {what} differs from the PyTorch model by "
                                   f"{checks['max_abs_diff']:.2e} (more than {float32_tolerance(checks):.1e}); "
                                   "nothing was written")
    return {"exporter": "dynamo", "fusion": None, "checks": checks}

