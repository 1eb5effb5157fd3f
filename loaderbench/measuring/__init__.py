"""Measuring: building loaders from grid cases and timing them (epochs, first batch, memory,
overlap with a step, host-to-device copies, distributed ranks), and what a run needs to be fair
(a random memory layout, the machine's speed probe, injected slowdowns for sensitivity runs).

Depends only on the foundation modules (``loaderbench.grid``, ``results``, ``errors``,
``storage``, ``machine``, ``runner``). Building a loader imports torch; nothing above it does.
"""
