"""Which int8 pooled graph serves fastest on this CPU, at batch 1 and at batch 32: measured when the export is written,
as `--target auto` reads the CPU, and recorded in export.json (`serving`), where `deploy.serving.Embedder` reads it.

No one runtime wins both: on an Intel Xeon with AVX-512 VNNI, onnxruntime's fused dynamic int8 graph answered one
sentence fastest while OpenVINO's static int8 IR ran batches of 32 about twice as fast (docs/deploy.md), so a server
that sees both takes each graph where it is fastest. Every candidate (the export's int8 pooled graphs: onnxruntime's,
and OpenVINO's with `--openvino`) runs the checks' sample sentences one at a time and as one padded batch of 32, in
turn, round after round, on one thread; each one's best round counts. The graphs are the export's own, each already
checked against PyTorch.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

BATCHES = (1, 32)
ROUNDS = 3
SMALL_BATCH = 8  # a call of fewer texts is served by the batch-1 choice, of more by the batch-32 one


def graph_runner(path: Path, threads: int = 1):
    """A session of an `.onnx` graph (onnxruntime) or an `.xml` IR (OpenVINO), as OpenVINO serves it."""
    if path.suffix == ".xml":
        from minilm.deploy.openvino import OpenVinoGraph

        return OpenVinoGraph(path, threads, exact=False)
    from minilm.deploy.onnx_model import session

    return session(path, threads)


def choose(directory: Path, candidates: list[str], tokenizer, texts: list[str]) -> dict:
    """{"1": graph, "32": graph, "ms": {graph: {"1": ms per sentence, "32": ms per sentence}}}."""
    runners = {name: graph_runner(Path(directory) / name) for name in candidates}
    singles = [tokenizer([t], return_tensors="np") for t in texts]
    batch = tokenizer((texts * (32 // len(texts) + 1))[:32], padding=True, return_tensors="np")
    feeds = {1: [{k: np.asarray(v, dtype=np.int64) for k, v in f.items()} for f in singles],
             32: [{k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}]}
    best = {name: {str(b): float("inf") for b in BATCHES} for name in runners}
    for _ in range(ROUNDS):
        for name, runner in runners.items():
            wanted = {i.name for i in runner.get_inputs()}
            for size in BATCHES:
                runs = [{k: v for k, v in feed.items() if k in wanted} for feed in feeds[size]]
                runner.run(None, runs[0])  # warm-up
                start = time.perf_counter()
                for feed in runs:
                    runner.run(None, feed)
                per_sentence = 1000 * (time.perf_counter() - start) / (len(runs) * size)
                best[name][str(size)] = min(best[name][str(size)], per_sentence)
    return {**{str(size): min(runners, key=lambda n: best[n][str(size)]) for size in BATCHES}, "ms": best,
            "small_batch": SMALL_BATCH}
