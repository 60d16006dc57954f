"""`minilm export`: an encoder, sequence classifier or question-answering checkpoint as ONNX graphs in a copy of its
directory (`deploy/`: the sentence-transformers layout, `deploy.layout`), float32 and, with `--quantize int8`,
int8 for a target CPU, each checked against PyTorch before anything is moved into place.

`--graph auto` fuses the graphs of the families onnxruntime's optimizer knows (`deploy.fusion`), `--target`
picks the int8 scheme (`deploy.quantize.SCHEMES`; auto: the CPU this runs on, `deploy.cpu_target`), `--pooling`
adds a sentence-transformers model's pooled graph. The checks (`deploy.checks`) are printed and recorded in
`export.json`; a float32 graph that differs from PyTorch is an error (a fused one falls back to the plain graph,
in one line), and an int8 graph that moved a predicted label says so in one line. `minilm evaluate --model OUT`
scores the directory with the task code.
"""

from __future__ import annotations

from pathlib import Path

from minilm.config.commands import ExportConfig
from minilm.data.files import check_writable, write_directory
from minilm.deploy.checks import moved_line, summary
from minilm.deploy.cpu_target import host_target, resolve_target
from minilm.deploy.fusion import FUSED_FAMILIES, fuses
from minilm.deploy.layout import is_exported
from minilm.deploy.onnx_export import OUTPUTS
from minilm.deploy.onnx_model import require_deploy_packages
from minilm.deploy.openvino import CALIBRATION_SAMPLES, require_openvino
from minilm.deploy.quantize import SCHEMES
from minilm.deploy.writer import Plan, write_export
from minilm.errors import MiniLMError, require
from minilm.models.architectures import family_of, inputs_for
from minilm.models.source import ModelSource, resolve_model


def check_output_dir(out: Path, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    require(out.is_dir(), f"output_dir {out} exists and is not a directory")
    require(is_exported(str(out)), f"output_dir {out} holds files that minilm export did not write; choose another "
                                   "--output-dir")
    require(overwrite, f"output_dir {out} holds an earlier export; pass --overwrite to replace it")


def plan_export(cfg: ExportConfig, source: ModelSource) -> Plan:
    """What to write, every refusal said before a weight is read."""
    config, head = source.config, source.head
    family = family_of(config)
    require(cfg.graph != "fused" or fuses(config),
            f"--graph fused: onnxruntime's optimizer fuses {', '.join(FUSED_FAMILIES)} graphs, not {family.name}'s; "
            "use --graph auto or plain")
    pipeline = source.pipeline if head is None else None  # what an encoder's embeddings are checked by
    if cfg.pooling:
        what = f"a {head} model" if head else "a plain Hugging Face encoder (no modules.json)"
        require(pipeline is not None and pipeline.sentence_transformer,
                f"--pooling writes a sentence-transformers model's pooled graph; '{cfg.model}' is {what}: "
                "drop --pooling")
        unknown = [m for m in pipeline.modules if m not in ("Transformer", "StaticEmbedding", "Pooling", "Normalize")]
        require(not unknown, f"--pooling puts Pooling and Normalize in the graph; '{cfg.model}' also has "
                             f"{', '.join(unknown)}: drop --pooling")
    graph = "fused" if cfg.graph == "fused" or (cfg.graph == "auto" and fuses(config)) else "plain"
    if cfg.openvino:
        require_openvino()
    calibration = calibration_texts(cfg.calibration_data) if cfg.openvino and cfg.quantize == "int8" else ()
    return Plan(head, graph, SCHEMES[resolve_target(cfg.target)[0]] if cfg.quantize == "int8" else None, pipeline,
                cfg.pooling, cfg.openvino, calibration)


def calibration_texts(specs: list[str], count: int = CALIBRATION_SAMPLES, seed: int = 0) -> tuple[str, ...]:
    """`count` lines drawn from the calibration text (a static int8 graph's activation ranges are measured on them)."""
    import random

    from minilm.data.corpora import resolve

    texts = [t.strip() for source in resolve(specs) for t in source.texts(None) if t.strip()]
    require(texts, f"calibration_data {' '.join(specs)} holds no text: give --calibration-data a file or corpus of "
                   "sentences")
    return tuple(random.Random(seed).sample(texts, min(count, len(texts))))


def export(cfg: ExportConfig) -> Path:
    """Export `cfg.model` into `cfg.output_dir`; returns the directory."""
    require_deploy_packages()
    out = Path(cfg.output_dir)
    check_output_dir(out, cfg.overwrite)
    check_writable(out, "output_dir")  # before anything is traced
    source = resolve_model(cfg.model)  # the one resolution: path, config, tokenizer and pipeline
    config, head = source.config, source.head
    require(head in OUTPUTS, f"minilm export takes encoders, sequence classifiers and question-answering models; "
                             f"'{cfg.model}' is a {', '.join(config.architectures or ['model with another head'])}")
    plan = plan_export(cfg, source)
    tokenizer = source.tokenizer
    model = source.load(head=head, num_labels=config.num_labels if head == "classification" else None,
                        attn_implementation="eager" if plan.graph == "fused" else None).eval()
    inputs = list(inputs_for(model, {n: n for n in tokenizer.model_input_names}))  # what the model takes
    path = Path(source.path)
    if plan.scheme is not None:
        target, why = resolve_target(cfg.target)
        print(f"int8 for {target} ({why}): {plan.scheme.why}")
        if host_target()[0] == "avx2" and not plan.scheme.reduce_range:
            print(f"this CPU has no VNNI: the check of the {target} graph here runs int8 products that saturate on "
                  "full-range weights, which the target CPU computes exactly")
    record = {}
    try:
        write_directory(out, lambda tmp: record.update(write_export(model, tokenizer, inputs, str(cfg.model),
                                                                    path if path.is_dir() else None, plan, tmp)),
                        "the exported model")
    except MiniLMError:
        raise
    except Exception as exc:  # the exporter's and onnxruntime's own failures, in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise MiniLMError(f"exporting '{cfg.model}' failed: {first}") from None
    say_written(cfg, record, out)
    return out


def say_written(cfg: ExportConfig, record: dict, out: Path) -> None:
    """What was written, in a line per graph, and the line int8 owes when it moved a task output."""
    head = record["head"]
    print(f"exported {cfg.model} ({head or 'encoder'}) to {out}:")
    for name, graph in record["graphs"].items():
        fused = ", ".join(f"{k} {v}" for k, v in graph["fusion"].items()) if graph["fusion"] else ""
        form = f"{graph['precision']}, " + (f"fused ({fused})" if fused else "plain")
        default = {record["default"]: " [default]", record["default_pooled"]: " [default pooled]"}.get(name, "")
        print(f"  {name}{default}: {form}, {graph['size_bytes'] / 1e6:.1f} MB; on {graph['checks']['samples']} "
              f"sample sentences {summary(graph['checks'])}")
    for graph in record["graphs"].values():
        line = moved_line(graph["checks"], head) if graph["precision"] == "int8" else None
        if line:
            print(line)
