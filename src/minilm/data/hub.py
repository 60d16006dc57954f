"""The one door to the Hugging Face hub's datasets (`pip install "minilm[hub]"`): corpora, GLUE, SQuAD.

Nothing here runs unless a user names a hub dataset (`hf:...`, `--task-dir hf`) or a named corpus has no
local copy; what fails (no `datasets` package, no network, an unknown dataset) is one `MiniLMError` line.
"""

from __future__ import annotations

import importlib.util

from minilm.errors import MiniLMError


def available() -> bool:
    """Whether the `datasets` package is installed (it does not say whether the hub can be reached)."""
    return importlib.util.find_spec("datasets") is not None


def load_dataset(path: str, name: str | None = None, split: str | None = None, streaming: bool = False,
                 what: str | None = None):
    """`datasets.load_dataset(path, name, split=split, streaming=streaming)`, its failures as one line."""
    what = what or "/".join(x for x in (path, name, split) if x)
    try:
        import datasets
    except ImportError:
        raise MiniLMError(f"{what} needs the datasets package: pip install 'minilm[hub]' (and hub access)") from None
    try:
        return datasets.load_dataset(path, name, split=split, streaming=streaming)
    except Exception as exc:  # the hub raises many kinds (no network, unknown name, bad split): one answer
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise MiniLMError(f"cannot load {what} from the hub: {first}") from None
