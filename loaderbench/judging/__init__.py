"""Judging: whether a run got slower. Derived ratios, thresholds, intervals, the verdict's rule,
baselines (recording and pooling them), the gate against stored numbers and its confirmation
reruns. Reads results through ``loaderbench.results``; uses ``measuring`` only for the speed probe
and the memory layout of reruns.
"""
