"""`minilm bench`: the distillation step, ours versus a faithful naive one, measured in one run (with
`--inference-models`, inference speed side by side; with `--speedup N`, the student shapes timed against the
teacher).

Rows, for each MiniLM version asked for (v1: L_AT + L_VR; v2: Q-Q, K-K, V-V with `relation_heads` heads):
* distillation step at each of `seq_lengths` (batch x seq random tokens, no padding), and for the packaged
  teacher on real SST-2 batches too (naive: padded to 128 as the original project did; ours: dynamic
  padding with length grouping), for `naive` (`measure.naive_step`: HF models called with output_attentions and
  output_hidden_states, eager, float32) and `fast` (our training step: objective, device step policy and
  optimizer step as `minilm distill` runs them) in float32 and bf16;
* each row: tokens/s, peak memory, the fraction of the step spent in the loss (the loss terms' forward and
  backward from the models' outputs, timed on their own after the steps), and useful FLOPs as a fraction
  of the matrix-multiply peak of the row's precision, measured in the row's own process (MFU);
* our step's rows run in fp32 and, where bf16 pays off by training's rule (`device_policy.bf16_pays_off`), bf16;
  elsewhere the bf16 rows are left out (and said so) unless `--precisions` asks;
* the losses of the fast step against the naive step's, same batch and weights;
* inference: teacher vs student examples/s at batch 32 and latency at batch 1.

`--preset bert-base` builds a randomly initialised BERT-base-shaped teacher (12 x 768, 12 heads, FFN 3,072,
vocabulary 30,522, 512 positions) and the seed's 6 x 768 student: the paper's shapes, no weights needed.

`--inference-models A B ...` times models instead (`deploy.speed`): PyTorch checkpoints, `minilm export` directories
and single graphs side by side on SST-2 dev text, at each of `--inference-batch-sizes`, `--inference-lengths`
(0: the sentences as they are; N: inputs of N tokens) and `--inference-threads`, in one Markdown table.

Each step row runs in its own spawned process (`measure.step_bench`), so that its peak memory is its own.
Every CPU row runs with `keep_freed_memory` (what our training does), naive rows included, so that the
ratios measure the code; one extra naive row shows glibc's default allocator. Rates are medians of
per-step rates; each setting's rows run `rounds` times in turn (naive, fast, naive, fast, ...) and a row's
rate is the median over all its rounds' steps: rows compared with each other saw the same drift.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from minilm.config.commands import BenchConfig
from minilm.config.settings import flatten
from minilm.data.corpora import data_root
from minilm.data.files import check_writable, write_atomic
from minilm.errors import MiniLMError, require
from minilm.measure.peak import matmul_tflops
from minilm.measure.step_bench import (AGREEMENT_TOLERANCE, DTYPES, StepSetup, agreement, check_shapes, inference,
                                       merge_rounds, plan_rows, run_isolated, with_preset_shape)
from minilm.train.device_policy import bf16_pays_off, cpu_features, pick_device


def versions_of(cfg: BenchConfig) -> list[str]:
    return cfg.versions or (["v1", "v2"] if cfg.preset else ["v1"])


def precisions_of(cfg: BenchConfig, device: torch.device) -> tuple[list[str], str | None]:
    """Our step's precisions, and the reason bf16 is left out when it is: as asked, or fp32 and, where bf16 pays
    off as training judges it (`device_policy.bf16_pays_off`), bf16."""
    if cfg.precisions:
        return cfg.precisions, None
    pays, why = bf16_pays_off(device)
    return (["fp32", "bf16"], None) if pays else \
        (["fp32"], f"bf16 rows left out: {why} (--precisions fp32 bf16 runs them anyway)")


def sst2_path(cfg: BenchConfig) -> Path:
    return Path(cfg.sst2) if cfg.sst2 else data_root() / "glue" / "SST-2" / "train.tsv"


def step_setup(cfg: BenchConfig) -> StepSetup:
    return StepSetup(teacher=cfg.teacher, preset=cfg.preset, student=with_preset_shape(cfg.student, cfg.preset),
                     relations=cfg.relations, batch_size=cfg.batch_size, steps=cfg.steps, sst2=sst2_path(cfg),
                     compile=cfg.compile)


def bench_inference(cfg: BenchConfig) -> dict:
    """`--inference-models`: inference speed of each model, side by side, on SST-2 dev (`deploy.speed`): every
    batch size, input length and thread count asked for."""
    from minilm.deploy.cpu_target import host_target
    from minilm.deploy.speed import compare, format_inference, usable_threads
    from minilm.tasks.glue import read_sentence_task

    require(sst2_path(cfg).parent.joinpath("dev.tsv").is_file(),
            f"SST-2 dev.tsv not found beside {sst2_path(cfg)}; pass --sst2 PATH/train.tsv")
    texts = [t[0] for t in read_sentence_task("sst2", "dev", str(sst2_path(cfg).parent)).texts]
    threads, left_out = usable_threads(cfg.inference_threads)
    if left_out:
        print(left_out)
    target, why = host_target()
    cpu = cpu_features()
    print(f"{cpu['name'] or 'this CPU'}: int8 target {target} ({why}); {len(texts)} SST-2 dev sentences")
    rows = compare(cfg.inference_models, texts, cfg.inference_batch_sizes, cfg.inference_lengths, threads, cfg.rounds)
    result = {"cpu": cpu, "int8_target": target, "threads": threads, "torch": torch.__version__,
              "texts": f"SST-2 dev ({len(texts)} sentences)", "rounds": cfg.rounds, "inference": rows}
    return finish(cfg, result, format_inference(rows))


def bench_shapes(cfg: BenchConfig) -> dict:
    """`--speedup N`: every candidate student shape of the teacher timed as int8 ONNX at batch 1 against the
    teacher's graph, and the one `minilm distill --speedup N` would choose (`measure.shape_speed`)."""
    from minilm.measure.shape_speed import time_shapes
    from minilm.models.source import resolve_model

    table = time_shapes(resolve_model(cfg.teacher).config, cfg.student.speedup, say=lambda line: None)
    result = {"cpu": cpu_features(), "teacher": cfg.teacher, **table.to_dict()}
    return finish(cfg, result, "\n".join([table.format(), table.verdict()]))


def finish(cfg: BenchConfig, result: dict, table: str) -> dict:
    """Print the table; write the results to --output."""
    print(table)
    if cfg.output:
        try:
            Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(Path(cfg.output), json.dumps(result, indent=1))
        except OSError as exc:
            raise MiniLMError(f"cannot write --output {cfg.output}: {exc.strerror or exc}") from None
    return result


def check_output(path: str) -> None:
    """--output must be a file that can be written, checked before anything is measured."""
    output = Path(path)
    require(not output.is_dir(), f"--output {path} is a directory; give a file name, e.g. {output / 'bench.json'}")
    check_writable(output.parent, "the directory of --output")
    require(not output.exists() or os.access(output, os.W_OK),
            f"--output {path} cannot be written (no permission); choose another file")


def bench(cfg: BenchConfig) -> dict:
    if cfg.output:
        check_output(cfg.output)
    if cfg.inference_models:
        return bench_inference(cfg)
    if cfg.student.speedup is not None:
        return bench_shapes(cfg)
    device = pick_device(cfg.device)
    require(cfg.preset or sst2_path(cfg).is_file(), f"SST-2 train.tsv not found at {sst2_path(cfg)}; pass --sst2 PATH")
    versions, setup = versions_of(cfg), step_setup(cfg)
    check_shapes(setup, versions, cfg.seq_lengths)
    precisions, left_out = precisions_of(cfg, device)
    if left_out:
        print(left_out)
    peak = {p: matmul_tflops(DTYPES[p], device) for p in precisions}
    print(f"matmul peak on {device}: " + ", ".join(f"{p} {v:.2f} TFLOP/s" for p, v in peak.items())
          + f" ({torch.get_num_threads()} threads)")
    rows = []
    for group in plan_rows(setup, versions, cfg.seq_lengths, device, precisions):
        runs: list[list[dict]] = [[] for _ in group]
        for round_ in range(cfg.rounds):
            for i, row in enumerate(group):
                result = run_isolated(setup, row)
                runs[i].append(result)
                print(f"  round {round_ + 1}/{cfg.rounds}  {row['version']} {row['mode']:5s} {row['precision']:4s} "
                      f"{str(row['seq']):12s} {row['allocator']:7s} {result['tokens_per_s']:9,.0f} tok/s  "
                      f"{result['peak_mem_mb']:8,.0f} MB  loss {100 * result['loss_fraction']:4.1f}% of step  "
                      f"({row['precision']} peak {result['row_peak_tflops']:.2f} TFLOP/s)", flush=True)
        rows += [merge_rounds(r) for r in runs]
    peak_after = {p: matmul_tflops(DTYPES[p], device) for p in precisions}
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
              "config": flatten(cfg), "matmul_tflops": peak,
              "matmul_tflops_after": peak_after, "steps": rows, "left_out": left_out,
              "agreement": {v: agreement(setup, device, v, tuple(precisions)) for v in versions},
              "inference": inference(setup, device)}
    return finish(cfg, result, format_table(result))


def format_table(result: dict) -> str:
    """Markdown: fast vs naive per (version, sequence setting), then inference and loss agreement."""
    lines = ["| batch | MiniLM | step | precision | malloc | tokens/s | vs naive | peak MB | vs naive | "
             "loss % of step | MFU (% of its precision's peak) | its peak TFLOP/s |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def key(r):
        return r["version"], str(r["seq"]).replace("-padded", "")

    naive = {key(r): r for r in result["steps"] if r["mode"] == "naive" and r["allocator"] == "kept"}
    for r in result["steps"]:
        base = naive[key(r)]
        shape = "x".join(map(str, r["batch_shape"])) + (" SST-2" if "sst2" in str(r["seq"]) else "")
        loss = f"{100 * r['loss_fraction']:.1f}%" if "loss_fraction" in r else "-"
        lines.append(f"| {shape} | {r['version']} | {r['mode']} | {r['precision']} | "
                     f"{r['allocator']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['peak_mem_mb']:,.0f} | "
                     f"{r['peak_mem_mb'] / max(base['peak_mem_mb'], 1e-9):.2f}x | {loss} | "
                     f"{100 * r['peak_fraction']:.1f}% | {r['row_peak_tflops']:.2f} |")
    inf = result["inference"]
    lines += ["", "| model | examples/s (batch 32) | latency ms (batch 1) |", "|---|---:|---:|"]
    for name in ("teacher", "student"):
        lines.append(f"| {name} | {inf[name]['examples_per_s']:,.0f} | {inf[name]['latency_ms_b1']:.1f} |")
    lines.append(f"\nstudent inference speed-up: {inf['speedup']:.2f}x")
    for version, by_precision in result["agreement"].items():
        for precision, agree in by_precision.items():
            ok = all(v["rel_diff"] < AGREEMENT_TOLERANCE[precision] for v in agree.values())
            lines.append(f"{version}: fast ({precision}) vs naive (fp32) loss, same batch and weights: "
                         + ", ".join(f"{k} rel diff {v['rel_diff']:.2e}" for k, v in agree.items())
                         + (f" -> agree (< {AGREEMENT_TOLERANCE[precision]:g})" if ok
                            else f" -> DISAGREE (>= {AGREEMENT_TOLERANCE[precision]:g})"))
    return "\n".join(lines)
