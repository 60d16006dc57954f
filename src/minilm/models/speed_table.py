"""The speed table `--speedup N` chooses a student's shape from: every candidate shape of a teacher timed as int8
ONNX at batch 1 on one CPU (`measure.shape_speed` measures it), and the shape chosen. A typed value: `minilm bench`
prints it, a student's plan records what was chosen from it (`models.plan`), a run keeps it as `student_shapes.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from minilm.models.architectures import Shape


@dataclass
class SpeedRow:
    """One candidate shape: its size, its int8 time at batch 1 as predicted from the timed graphs, and (for the
    shapes timed in full) as measured beside the teacher's graph."""

    shape: Shape
    parameters: int  # the whole encoder's, embeddings included
    block_parameters: int  # its transformer blocks' (what "largest" ranks by: embeddings are lookups, not time)
    predicted_ms: float
    predicted_speedup: float
    measured_speedup: float | None = None


@dataclass
class SpeedTable:
    """Every candidate shape of a teacher timed against it as int8 ONNX at batch 1 on one CPU, and the one chosen
    for `speedup` (the largest whose own graph measured at least that fast; None when none did)."""

    speedup: float
    cpu: str
    sequence_tokens: int
    threads: int
    rows: list[SpeedRow]
    chosen: Shape | None = None

    @property
    def chosen_row(self) -> SpeedRow | None:
        return next((r for r in self.rows if r.shape == self.chosen and r.measured_speedup is not None), None)

    def fastest(self) -> SpeedRow:
        """The candidate predicted to be the fastest."""
        return max(self.rows, key=lambda r: r.predicted_speedup)

    def format(self) -> str:
        """The candidates as a Markdown table, largest first; the shapes predicted to reach `speedup` marked."""
        lines = ["| shape | heads | FFN | parameters | in blocks | int8 ms (batch 1) | x teacher int8 | measured |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in sorted(self.rows, key=lambda r: (-r.block_parameters, -r.shape.layers)):
            mark = " *" if row.predicted_speedup >= self.speedup else ""
            measured = f"{row.measured_speedup:.2f}x" if row.measured_speedup is not None else ""
            lines.append(f"| {row.shape.layers}x{row.shape.hidden}{mark} | {row.shape.heads} | {row.shape.ffn} | "
                         f"{row.parameters / 1e6:.1f}M | {row.block_parameters / 1e6:.2f}M | {row.predicted_ms:.2f} | "
                         f"{row.predicted_speedup:.2f}x | {measured} |")
        return "\n".join(lines)

    def verdict(self) -> str:
        """One line: the shape chosen, or why none was (the fastest shape's measured speed-up where it has one)."""
        row = self.chosen_row
        if row is not None:
            return (f"chosen: {row.shape.layers}x{row.shape.hidden}, {row.shape.heads} heads, FFN {row.shape.ffn} "
                    f"({row.measured_speedup:.2f}x the teacher's int8 graph, measured)")
        fastest = self.fastest()
        how = "measured" if fastest.measured_speedup is not None else "predicted"
        speed = fastest.measured_speedup if fastest.measured_speedup is not None else fastest.predicted_speedup
        return (f"no student shape reaches --speedup {self.speedup:g} on this CPU: the fastest, "
                f"{fastest.shape.layers}x{fastest.shape.hidden}, answers {speed:.2f}x as fast as the teacher's int8 "
                f"graph ({how}); ask for less, or give the shape flags")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "SpeedTable":
        rows = [SpeedRow(**{**r, "shape": Shape(**r["shape"])}) for r in record["rows"]]
        chosen = Shape(**record["chosen"]) if record.get("chosen") else None
        return cls(record["speedup"], record["cpu"], record["sequence_tokens"], record["threads"], rows, chosen)


SHAPES_FILE = "student_shapes.json"  # the speed table, beside a student chosen by speed and in its run directory


