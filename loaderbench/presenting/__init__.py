"""Presenting: the compact table, the markdown report, its plots and the recommended settings,
all from a results file read through ``loaderbench.results`` (and, for the report's verdict,
``judging``). Nothing here builds a loader.
"""
