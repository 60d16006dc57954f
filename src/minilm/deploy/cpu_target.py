"""The CPU an int8 graph is built for: `avx2`, `avx512_vnni` or `arm64`, read from the CPU this runs on unless named.

onnxruntime's int8 matrix products multiply unsigned 8-bit activations by signed 8-bit weights. With VNNI
(AVX512-VNNI, or AVX-VNNI on newer desktop cores) the products are summed exactly; on a CPU with AVX2 only they go
through `vpmaddubsw`, which saturates pairs of products at 16 bits, so full-range weights come out wrong where two
large products meet (7-bit weights cannot overflow it). ARM's dot-product instructions have no such limit. Each
target has its own scheme (`deploy.quantize.SCHEMES`); `host_target` reads which one the running CPU needs.
"""

from __future__ import annotations

import platform

TARGETS = ("avx2", "avx512_vnni", "arm64")


def cpu_flags() -> set[str]:
    """The instruction-set extensions torch's CPU probe reports (Linux's /proc/cpuinfo flags where it has none)."""
    import torch

    try:
        info = torch._C._cpu._get_cpu_capability()
        return {name for name, value in info.items() if value is True}
    except (AttributeError, RuntimeError):
        try:
            with open("/proc/cpuinfo") as handle:
                return set(next((line for line in handle if line.startswith(("flags", "Features"))), "").split())
        except OSError:
            return set()


def host_target(flags: set[str] | None = None, machine: str | None = None) -> tuple[str, str]:
    """(the target of the CPU this runs on, why): arm64 on ARM, avx512_vnni where the CPU has AVX512-VNNI or
    AVX-VNNI, else avx2."""
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64") or machine.startswith("armv8"):
        return "arm64", f"this CPU is {machine}"
    flags = cpu_flags() if flags is None else flags
    found = [name for name in ("avx512_vnni", "avx_vnni") if name in flags]
    if found:
        return "avx512_vnni", f"this CPU has {' and '.join(n.upper().replace('_', '-') for n in found)}"
    return "avx2", "this CPU has no AVX512-VNNI or AVX-VNNI"


def resolve_target(asked: str) -> tuple[str, str]:
    """(target, why) for `--target`: `auto` is the running CPU's (`host_target`), any other is taken as given."""
    if asked == "auto":
        target, why = host_target()
        return target, f"auto: {why}"
    return asked, "asked for"
