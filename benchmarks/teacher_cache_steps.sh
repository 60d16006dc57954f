#!/usr/bin/env bash
# Steps a second of the frontier's sentence recipe with the teacher run every step (--teacher-cache off) and with its
# readings kept on disk (on: the teacher does not run while the student trains), for the 3x256 and 3x128 students of
# the packaged all-MiniLM-L6-v2, one after the other, alone on the machine. Each run takes STEPS steps; the pace is
# that of the second half (the first steps warm the allocator and, with the cache, the page cache).
# Prints a table and writes docs/frontier/teacher_cache.json. Run: bash benchmarks/teacher_cache_steps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
PY=".venv/bin/python"
R=runs/teacher_cache_steps
STEPS=${STEPS:-200}
mkdir -p $R docs/frontier
for shape in "3 256" "3 128"; do
    set -- $shape
    for cache in off on; do
        out=$R/${1}x${2}_$cache
        [ -d $out/model ] || $M distill --config configs/frontier/sentence.yaml --student-layers $1 --student-hidden $2 \
            --teacher-cache $cache --max-steps $STEPS --log-every 25 --save-every 0 --output-dir $out > $out.log 2>&1
    done
done
$PY - "$R" <<'EOF'
import json, sys
from pathlib import Path

from minilm.train.device_policy import cpu_features

KNOWN = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
runs = Path(sys.argv[1])


def pace(run: Path) -> float:
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    timed = [r for r in logged if "elapsed_s" in r]
    first, last = timed[len(timed) // 2 - 1], timed[-1]
    return (last["step"] - first["step"]) / (last["elapsed_s"] - first["elapsed_s"])


rows = []
for shape in ("3x256", "3x128"):
    off, on = pace(runs / f"{shape}_off"), pace(runs / f"{shape}_on")
    rows.append({"shape": shape, "steps_per_s_teacher_each_step": off, "steps_per_s_teacher_cached": on})
flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
cpu = f"{cpu_features()['name']} ({', '.join(f for f in KNOWN if f in flags)})"
record = {"cpu": cpu, "rows": rows}
Path("docs/frontier/teacher_cache.json").write_text(json.dumps(record, indent=1) + "\n")
print(f"CPU: {record['cpu']}\n\n| student | teacher each step | teacher's readings kept | x |\n|---|---:|---:|---:|")
for r in rows:
    a, b = r["steps_per_s_teacher_each_step"], r["steps_per_s_teacher_cached"]
    print(f"| {r['shape']} | {a:.2f} steps/s | {b:.2f} steps/s | {b / a:.2f}x |")
EOF
