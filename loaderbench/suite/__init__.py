"""The pytest side: the plugin behind ``pytest --benchmark-only`` (grid options, fixtures, what
each benchmark records), writing results safely when a run is interrupted, and the Hypothesis
profiles of the property tests. Wired in by the repository's ``conftest.py``.
"""
