"""Compile the fused relation-KL kernels for a Hopper GPU (sm_90) on a machine without one, and read the result.

Triton's front end and its bundled ptxas and cuobjdump run on any host, so this checks what the CPU
interpreter cannot: that every kernel variant `relation_kl` launches compiles for the H100/H200 (Triton's
code generator rejects things the interpreter accepts), whether its matrix products became Hopper's `wgmma`
instructions, and its registers, local memory (spills) and shared memory per block.
Run: .venv/bin/python benchmarks/triton_compile_check.py   (prints a table; docs/performance.md quotes it)
Kernels decorated under TRITON_INTERPRET=1 cannot be compiled: run it in a process without that variable.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from minilm.losses import triton_kl as kernels

HOPPER = GPUTarget("cuda", 90, 32)
TOOLS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
FORWARD = ["TL", "TR", "SL", "SR", "MASK", "KL", "STATS", "stride_tl", "stride_tr", "stride_sl", "stride_sr",
           "stride_tls", "stride_trs", "stride_sls", "stride_srs", "seq", "heads", "dt", "ds", "scale_t", "scale_s"]
GRADIENT = ["TL", "TR", "SL", "SR", "MASK", "STATS", "GRAD", "OUT", "stride_tl", "stride_tr", "stride_sl", "stride_sr",
            "stride_out", "stride_tls", "stride_trs", "stride_sls", "stride_srs", "stride_outs", "seq", "heads", "dt",
            "ds", "scale_t", "scale_s"]


def compile_variant(kind: str, dtype: str, head: int, left: bool = True) -> dict:
    """Compile one launch of `relation_kl` for sm_90 with the blocks and warps `TritonRelationKL` picks on a GPU."""
    width, inputs, ieee = kernels._block_width(head), [f"*{dtype}"] * 4, dtype == "fp32"
    launch = "forward" if kind == "forward" else ("left" if left else "right")
    first, second, warps = kernels._launch(launch, ieee, head, torch.device("cuda"))
    if kind == "forward":
        signature = dict(zip(FORWARD, inputs + ["*i32", "*fp32", "*fp32"] + ["i32"] * 12 + ["fp32", "fp32"]))
        constexprs = dict(BLOCK_M=first, BLOCK_N=second, BLOCK_DT=width, BLOCK_DS=width, IEEE=ieee)
        fn = kernels._forward_kernel
    else:
        signature = dict(zip(GRADIENT, inputs + ["*i32", "*fp32", "*fp32", "*fp32"] + ["i32"] * 14 + ["fp32", "fp32"]))
        constexprs = dict(BLOCK_OWN=first, BLOCK_OTHER=second, BLOCK_DT=width, BLOCK_DS=width, IEEE=ieee, LEFT=left)
        fn = kernels._grad_kernel
    compiled = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs), target=HOPPER,
                              options={"num_warps": warps})
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as handle:
        handle.write(compiled.asm["cubin"])
    usage = subprocess.run([os.path.join(TOOLS, "cuobjdump"), "--dump-resource-usage", handle.name],
                           capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    field = lambda name: int(re.search(rf"{name}:(\d+)", usage).group(1))  # noqa: E731
    return {"registers": field("REG"), "local_bytes": field("LOCAL"), "stack_bytes": field("STACK"),
            "shared_bytes": compiled.metadata.shared, "wgmma": "wgmma.mma_async" in compiled.asm["ptx"],
            "warps": compiled.metadata.num_warps}


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs=4, action="append", metavar=("KIND", "DTYPE", "HEAD", "LEFT"),
                        help="compile just this variant (forward|gradient, bf16|fp32, head size, left|right) and "
                             "print its numbers as JSON; repeatable")
    args = parser.parse_args()
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    if args.only:
        for kind, dtype, head, side in args.only:
            print(json.dumps(compile_variant(kind, dtype, int(head), side == "left")))
        return
    print("| kernel | inputs | head size | registers/thread | stack + local (spill) bytes | shared bytes/block | wgmma |")
    print("|---|---|---:|---:|---:|---:|---|")
    for dtype in ("bf16", "fp32"):
        for head in (8, 32, 64, 128):
            for kind, left in (("forward", True), ("gradient, left", True), ("gradient, right", False)):
                r = compile_variant(kind.split(",")[0], dtype, head, left)
                print(f"| {kind} | {dtype} | {head} | {r['registers']} | {r['stack_bytes'] + r['local_bytes']:,} | "
                      f"{r['shared_bytes']:,} | "
                      f"{'yes' if r['wgmma'] else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
