"""Preemption and Ctrl-C: the first SIGTERM or SIGINT during training ends the current step, saves a checkpoint
there and stops; the same command resumes from it.

Clouds, Kubernetes and SLURM send SIGTERM some seconds before they take a machine back, and a user stops a run
with Ctrl-C. Raising at once would lose every step since the last checkpoint, so while `fit` runs the first
signal only sets a flag; the loop reads it after each step (`requested`), saves the checkpoint of that step and
raises `Terminated` (SIGTERM) or `Interrupted` (Ctrl-C) naming it. The run restarted with the same command
resumes from it, bitwise as if it had never stopped: the checkpoint is the one `--save-every` would have written
at that step.

Later signals never interrupt the checkpoint being written, nor the line that names it: a second SIGTERM is
ignored from the first on (the process is stopping already), and a second Ctrl-C, the one a user presses when
they will not wait, stops at once (`KeyboardInterrupt`; the checkpoint before stands). After the block, SIGTERM
stays ignored once one arrived, so that nothing raises while the command prints its last line and exits.

With many processes every rank gets the signal (torchrun and SLURM forward it), but not at the same moment: the
ranks agree through a sum over them, so all stop after the same step and write one checkpoint together.
"""

from __future__ import annotations

import signal
import threading

import torch

from minilm.errors import Interrupted, Terminated


class Preemption:
    """Within `with Preemption():` the first SIGTERM or SIGINT sets `signalled` to its number instead of acting;
    the handlers that were there before are put back on exit (SIGTERM left ignored once one arrived). Outside the
    main thread signals cannot be caught, and nothing is installed."""

    def __init__(self):
        self.signalled: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signalled is None:
            self.signalled = signum
        elif signum == signal.SIGINT and self.signalled == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: now, without waiting for the checkpoint

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            stopping = number == signal.SIGTERM and self.signalled is not None
            signal.signal(number, signal.SIG_IGN if stopping else handler)
        self._previous = {}

    def requested(self, accelerator) -> bool:
        """Whether any rank was signalled (every rank gets the same answer at the same step)."""
        if accelerator.num_processes == 1:
            return self.signalled is not None
        flag = torch.tensor([float(self.signalled is not None)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)

    def stopped(self, step: int, total: int, checkpoint) -> BaseException:
        """What ends the run once its checkpoint is saved: `Interrupted` for Ctrl-C, else `Terminated`."""
        how = "interrupted (Ctrl-C)" if self.signalled == signal.SIGINT else "stopped by SIGTERM"
        message = (f"{how} at step {step} of {total}; checkpoint {checkpoint}; run the same command again to resume "
                   "from it")
        return Interrupted(message) if self.signalled == signal.SIGINT else Terminated(message)
