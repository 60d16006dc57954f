"""User-facing errors.

Anything a user can cause (a missing file, an empty corpus, an impossible student) is raised as
`MiniLMError` with a one-line message that names the problem and, where there is one, the fix.
The CLI prints it as `minilm: error: ...` and exits with status 2, without a traceback.
"""

from __future__ import annotations


class MiniLMError(Exception):
    """A problem with the user's input or environment, reported in one line."""


def require(condition: bool, message: str) -> None:
    """Raise `MiniLMError(message)` unless `condition` holds."""
    if not condition:
        raise MiniLMError(message)


class Terminated(BaseException):
    """SIGTERM arrived: a cloud, Kubernetes or SLURM is taking the machine back. Not a mistake in the input, so
    not a `MiniLMError`; a BaseException, like KeyboardInterrupt, so that no `except Exception` turns it into
    one, while `finally` blocks still remove what was half-written. The message says what was kept and how to
    go on."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, once the checkpoint of the current step is saved: a KeyboardInterrupt (what Ctrl-C
    raises anywhere else) whose message names the checkpoint and how to go on."""
