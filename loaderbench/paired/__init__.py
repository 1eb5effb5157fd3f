"""Side-by-side comparison: two environments (or two configurations) measured at the same time,
round by round, and judged from the pairs.

- ``side``: the measuring process of one side (``python -m loaderbench.paired.side``), holding one
  loader at a time and timing one round whenever it is asked;
- ``control``: the controller's end: starting, talking to and stopping side processes;
- ``environments``: where a side's interpreter and code come from (this one, another
  interpreter, a pip requirement, a git ref, a baseline's recipe);
- ``schedule``: how a comparison spends its seconds over blocks and rounds, and when a row stops
  (also tune's contests);
- ``engine``: the rows to measure, what a block measures (pairs in fresh side processes), the
  verdict rows;
- the commands built on it: ``ab`` (two environments), ``ratios`` (ratios within one run),
  ``sensitivity`` (A against A and injected slowdowns), ``remeasure`` (a baseline's recipe against
  this environment, for ``gate --remeasure``).

The statistics are in ``loaderbench.judging.intervals``, the verdict's rule and table in
``loaderbench.judging.verdict``.
"""
