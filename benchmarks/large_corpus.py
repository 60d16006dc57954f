"""Distill from a synthetic corpus larger than this benchmark lets the process hold, and report peak memory.

Writes GIGABYTES of text (lines of words drawn from WikiText-2's vocabulary), runs `minilm distill` on
it for a few steps, and prints the child's peak resident set (ru_maxrss) next to the corpus size,
and the tokenization and step times. Memory must stay flat: the corpus is streamed into the
memory-mapped token cache and batches read only the examples they use.

Run: .venv/bin/python benchmarks/large_corpus.py --gigabytes 2 --workdir /tmp/minilm_large
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_corpus(path: Path, gigabytes: float, source: Path) -> int:
    words = sorted({w for line in source.read_text(encoding="utf-8").split("\n") for w in line.split()})
    rng = random.Random(0)
    target = int(gigabytes * 2 ** 30)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        while written < target:
            block = "\n".join(" ".join(rng.choices(words, k=rng.randint(8, 120))) for _ in range(2000)) + "\n"
            out.write(block)
            written += len(block.encode())
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workdir", default="/tmp/minilm_large")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.txt"
    if not corpus.is_file() or corpus.stat().st_size < args.gigabytes * 2 ** 30:
        start = time.perf_counter()
        size = write_corpus(corpus, args.gigabytes, Path(args.data_root) / "text" / "wikitext-2-valid.txt")
        print(f"wrote {size / 2 ** 30:.2f} GiB in {time.perf_counter() - start:.0f} s")
    command = [str(REPO / ".venv" / "bin" / "minilm"), "distill", "--config", str(REPO / "configs" / "cpu_testbed.yaml"),
               "--data", str(corpus), "--output-dir", str(work / "run"), "--cache-dir", str(work / "cache"),
               "--max-steps", str(args.steps), "--save-every", "0", "--log-every", "5", "--overwrite"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        return 1
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    meta = json.loads(next((work / "cache").glob("text-*/meta.json")).read_text())
    records = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    summary = {"corpus_bytes": corpus.stat().st_size, "cache_tokens": meta["tokens"], "cache_examples": meta["examples"],
               "peak_rss_bytes": peak, "wall_seconds": seconds, "steps": args.steps, "last_loss": records[-1]["loss"]}
    print(json.dumps(summary, indent=1))
    print(f"corpus {summary['corpus_bytes'] / 2 ** 30:.2f} GiB -> peak resident memory {peak / 2 ** 30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
