"""Preemption: SIGTERM during training ends the current step, saves a checkpoint there and stops.

Clouds, Kubernetes and SLURM send SIGTERM some seconds before they take a machine back. Raising at once would
lose every step since the last checkpoint, so while `fit` runs the signal only sets a flag; the loop reads it
after each step (`requested`), saves the checkpoint of that step and raises `Terminated` naming it. The run
restarted with the same command resumes from it, bitwise as if it had never stopped: the checkpoint is the one
`--save-every` would have written at that step.

With many processes every rank gets the signal (torchrun and SLURM forward it), but not at the same moment:
the ranks agree through a sum over them, so all stop after the same step and write one checkpoint together.
"""

from __future__ import annotations

import signal
import threading

import torch


class Preemption:
    """Within `with Preemption():` SIGTERM sets `self.signalled` instead of acting; the handler that was there
    before (the command line's, which raises `Terminated`) is put back on exit. Outside the main thread signals
    cannot be caught, and nothing is installed."""

    def __init__(self):
        self.signalled = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        self.signalled = True

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def requested(self, accelerator) -> bool:
        """Whether any rank was sent SIGTERM (every rank gets the same answer at the same step)."""
        if accelerator.num_processes == 1:
            return self.signalled
        flag = torch.tensor([float(self.signalled)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
