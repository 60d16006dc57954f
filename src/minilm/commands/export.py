"""`minilm export`: an encoder, sequence classifier or question-answering checkpoint as a self-contained ONNX
directory (`deploy/`), in float32 or with int8 weights, checked against PyTorch before it is called done.

The graph comes from `torch.onnx` with dynamic batch and sequence axes; int8 is onnxruntime's dynamic
quantization (`deploy.onnx_model.INT8_SETTINGS`). Before anything is moved into place, the exported graph and the
PyTorch model run the same sample sentences (a padded batch, and one at a time) and the largest difference
of their outputs is printed and recorded in `export.json`; for int8 also how often the predicted labels (or
answer starts and ends) agree. A float32 graph that differs by more than `FP32_TOLERANCE` is an error, and
nothing is written. `minilm evaluate --model OUT` scores the directory with the task code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from minilm.config.commands import ExportConfig
from minilm.data.files import write_directory
from minilm.deploy.onnx_export import export_graph, quantize_int8
from minilm.deploy.onnx_model import (EXPORT_FILE, EXPORT_FORMAT, GRAPH_FILE, OUTPUTS, files_size, is_exported,
                                      require_deploy_packages, session)
from minilm.errors import MiniLMError, require
from minilm.models.architectures import inputs_for
from minilm.models.heads import head_of
from minilm.models.loading import load_encoder, load_model_config, load_tokenizer

FP32_TOLERANCE = 1e-3  # largest |ONNX - PyTorch| of a float32 graph's outputs (measured: about 1e-6)
SAMPLES = ["a gripping, beautifully shot film.", "dull.", "The committee met on Tuesday and, after a long debate "
           "about the budget, voted to postpone the decision until the spring session.", "what a waste of time",
           "It is neither as funny nor as clever as it thinks it is, but the cast is game.", "yes",
           "Paris is the capital of France.", "Who wrote the novel, and when was it first published?"]


def check_output_dir(out: Path, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    require(out.is_dir(), f"output_dir {out} exists and is not a directory")
    require(is_exported(str(out)), f"output_dir {out} holds files that minilm export did not write; choose another "
                                   "--output-dir")
    require(overwrite, f"output_dir {out} holds an earlier export; pass --overwrite to replace it")


def compare(model, graph, head: str | None, tokenizer, quantized: bool) -> dict:
    """The exported graph against the PyTorch model on the sample sentences (a padded batch, then one by one)."""
    feeds = [tokenizer(SAMPLES, padding=True, return_tensors="pt")] + [tokenizer([s], return_tensors="pt")
                                                                        for s in SAMPLES]
    names = [i.name for i in graph.get_inputs()]
    largest, agree, total = 0.0, 0, 0
    for batch in feeds:
        with torch.no_grad():
            result = model(**{k: batch[k] for k in names})
        expected = [getattr(result, name).float().numpy() for name in OUTPUTS[head]]
        got = graph.run(list(OUTPUTS[head]), {k: batch[k].numpy().astype(np.int64) for k in names})
        mask = batch["attention_mask"].numpy().astype(bool)
        for e, g in zip(expected, got):
            real = mask if e.ndim >= 2 and e.shape[:2] == mask.shape else np.ones(e.shape[0], bool)
            largest = max(largest, float(np.abs(e - g)[real].max()))  # padded positions are nobody's output
            if head is not None:  # labels, or answer starts and ends
                if head == "classification":
                    picks_e, picks_g = e.argmax(-1), g.argmax(-1)
                else:
                    picks_e = np.where(mask, e, -np.inf).argmax(-1)
                    picks_g = np.where(mask, g, -np.inf).argmax(-1)
                agree, total = agree + int((picks_e == picks_g).sum()), total + picks_e.size
    checks = {"max_abs_diff": largest, "samples": len(SAMPLES)}
    if head is not None:
        checks["prediction_agreement"] = agree / total
    require(quantized or largest <= FP32_TOLERANCE,
            f"the exported float32 graph differs from the PyTorch model by {largest:.2e} (more than "
            f"{FP32_TOLERANCE:g}); nothing was written")
    return checks


def export(cfg: ExportConfig) -> Path:
    """Export `cfg.model` into `cfg.output_dir`; returns the directory."""
    require_deploy_packages()
    out = Path(cfg.output_dir)
    check_output_dir(out, cfg.overwrite)
    config = load_model_config(cfg.model)
    head = head_of(config)
    require(head in OUTPUTS, f"minilm export takes encoders, sequence classifiers and question-answering models; "
                             f"'{cfg.model}' is a {', '.join(config.architectures or ['model with another head'])}")
    tokenizer = load_tokenizer(cfg.model)
    model = load_encoder(cfg.model, num_labels=config.num_labels if head == "classification" else None,
                         head=head).eval()
    inputs = list(inputs_for(model, {n: n for n in tokenizer.model_input_names}))  # what the model takes
    sample = tokenizer(SAMPLES[:2], padding=True, return_tensors="pt")
    record = {}

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        float_graph = tmp / ("float32.onnx" if cfg.quantize == "int8" else GRAPH_FILE)
        export_graph(model, head, {k: sample[k] for k in inputs}, float_graph)
        if cfg.quantize == "int8":
            quantize_int8(float_graph, tmp / GRAPH_FILE)
            float_graph.unlink()
        checks = compare(model, session(tmp / GRAPH_FILE), head, tokenizer, cfg.quantize == "int8")
        model.config.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        record.update({"format": EXPORT_FORMAT, "head": head, "quantize": cfg.quantize, "inputs": inputs,
                       "outputs": list(OUTPUTS[head]), "source": str(cfg.model), "checks": checks,
                       "size_bytes": files_size(tmp)})
        (tmp / EXPORT_FILE).write_text(json.dumps(record, indent=1))

    try:
        write_directory(out, write, "the exported model")
    except MiniLMError:
        raise
    except Exception as exc:  # the exporter's and onnxruntime's own failures, in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise MiniLMError(f"exporting '{cfg.model}' failed: {first}") from None
    checks = record["checks"]
    agreement = f", predictions agree on {100 * checks['prediction_agreement']:.1f}%" \
        if "prediction_agreement" in checks else ""
    print(f"exported {cfg.model} ({head or 'encoder'}, {cfg.quantize}) to {out}: {record['size_bytes'] / 1e6:.1f} MB; "
          f"largest difference from PyTorch on {checks['samples']} sample sentences {checks['max_abs_diff']:.2e}"
          f"{agreement}")
    return out
