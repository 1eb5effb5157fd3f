"""A randomised memory layout for every benchmark process loaderbench starts.

How fast a process runs can depend on incidental details of how it was started. On a 2-core AMD
EPYC machine (2026-11-24) `test_throughput[large-w2-spawn]` took about 75 ms per epoch or about
92 ms depending only on the size of the command line and environment, every time: the
`--benchmark-json` path 4 characters longer moved it from 92 to 75 ms, and an unused environment
variable of 1024 or 2048 characters moved it back (0-256 or 4096 characters did not). This is the
measurement bias of Mytkowicz et al., "Producing Wrong Data Without Doing Anything Obviously
Wrong!" (ASPLOS 2009), where the environment's size shifts the initial stack. A baseline
recorded by one command and a run made by another can then differ by a mode, systematically,
with no change to the code, and back-to-back runs of one command never show it.

The remedy is theirs too: randomise the setup. Every process loaderbench starts to measure gets
``LOADERBENCH_LAYOUT_PAD``, an unused variable of a different length. The k-th of n runs draws
its length uniformly from the k-th of n equal slices of [0, 4096): one page, since 0 and 4096
extra characters gave the same mode here, so the n runs spread over every offset and the noise
band of a baseline sees the modes a later run can land in. The length is recorded in the results
(``loaderbench.layout_pad``).

``python -m loaderbench.measuring.layout`` prints a pad of uniformly random length (for the Makefile).
"""

from __future__ import annotations

import os
import random

ENV_VAR = "LOADERBENCH_LAYOUT_PAD"
SPAN = 4096  # one page of stack offsets


def pad_length(slot: int, slots: int, rng: random.Random | None = None) -> int:
    """A length drawn uniformly from slice ``slot`` (0-based) of ``slots`` equal slices of [0, SPAN)."""
    if not 0 <= slot < slots:
        raise ValueError(f"slot {slot} is not one of {slots} slices")
    rng = rng or random.Random()
    low, high = slot * SPAN // slots, (slot + 1) * SPAN // slots
    return rng.randrange(low, max(high, low + 1))


def environment(
    slot: int, slots: int, rng: random.Random | None = None, base: dict | None = None
) -> dict[str, str]:
    """The environment for run ``slot`` of ``slots``: ``base`` (os.environ) plus the pad."""
    env = dict(os.environ if base is None else base)
    env[ENV_VAR] = "x" * pad_length(slot, slots, rng)
    return env


def recorded_pad() -> int:
    """This process's pad length (0 when started without one)."""
    return len(os.environ.get(ENV_VAR, ""))


if __name__ == "__main__":
    print("x" * pad_length(0, 1))
