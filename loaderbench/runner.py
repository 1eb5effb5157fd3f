"""Runner classes: which folder of ``baselines/`` a run belongs to (``cpu``, ``gpu``, or a name of
your own for another kind of machine). Seconds are only judged against a baseline of the same class.
"""

from __future__ import annotations

import os
import re

ENV_VAR = "LOADERBENCH_RUNNER"

# A runner class names a folder, so it must be a plain, portable folder name.
_VALID = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")


def parse_runner(value: str) -> str:
    """``value`` checked to be usable as a runner class; raises ValueError saying what is allowed."""
    if not isinstance(value, str) or not _VALID.match(value):
        raise ValueError(
            f"runner class {value!r} is not a plain lower-case name such as cpu or gpu "
            "(letters, digits, '.', '_', '-')"
        )
    return value


def default_runner() -> str:
    """$LOADERBENCH_RUNNER when set, else ``gpu`` when CUDA is available, else ``cpu``."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return parse_runner(chosen)
    import torch  # only here: judging results must not need torch

    return "gpu" if torch.cuda.is_available() else "cpu"
