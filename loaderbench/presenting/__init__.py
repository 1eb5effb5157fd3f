"""Presenting: every rendering, each from data the layers below produce. The compact table, the
markdown report, its plots and the recommended settings, from a results file read through
``loaderbench.results``; verdicts (judging/verdict.py), `ratios`' rows, `sensitivity`'s
comparisons and `tune`'s answer as terminal text, markdown and JSON. Nothing here builds a loader.
"""
