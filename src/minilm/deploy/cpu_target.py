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


def cpu_name() -> str:
    """The running CPU's model name ("AMD EPYC 7B13"), as /proc/cpuinfo gives it; the platform's word elsewhere."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_record() -> dict:
    """Which CPU ran an export's checks, for export.json: an int8 graph's checks hold for the CPU they ran on."""
    target, why = host_target()
    return {"cpu": cpu_name(), "machine": platform.machine(), "target": target, "why": why}


def run_here_note(graph: str, scheme: dict, here: tuple[str, str] | None = None) -> str | None:
    """What to know when the int8 graph `graph` of `scheme` (export.json's record: target, reduce_range) runs on
    this CPU (`here`: its target and why, `host_target()` unless given), or None when it is the graph's own.
    Full-range weights saturate on AVX2 without VNNI, so such a graph scores lower here than on its target; any
    other graph computes its products exactly here too, but runs at this CPU's speed, not its target's."""
    here_target, why = here or host_target()
    target = scheme.get("target")
    if target is None or target == here_target:
        return None
    if here_target == "avx2" and not scheme.get("reduce_range", True):
        return (f"note: {graph} is int8 built for {target}; {why}, so its full-range products saturate here and its "
                f"scores here can be lower than on a {target} CPU (export with --target avx2 for this one)")
    return (f"note: {graph} is int8 built for {target}; this {here_target} CPU computes its products exactly too, so "
            f"its scores hold, but its speed here is not a {target} CPU's")


def resolve_target(asked: str) -> tuple[str, str]:
    """(target, why) for `--target`: `auto` is the running CPU's (`host_target`), any other is taken as given."""
    if asked == "auto":
        target, why = host_target()
        return target, f"auto: {why}"
    return asked, "asked for"
