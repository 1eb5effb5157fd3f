"""HOW DataLoader speed is measured and judged: grid, measurement, plugin, baselines, gate, report."""

__version__ = "0.1.0"


def tune(dataset, **options):
    """The DataLoader settings for ``dataset`` on this machine, found by experiment, with the
    evidence and diagnoses: a ``TuneResult`` (``.snippet()``, ``.as_dict()``), which
    ``loaderbench.presenting.tune`` shows (``text(result)``) and writes (``write(result, folder)``).
    Options as ``loaderbench.tuning.tune``; imported on first use, so ``import loaderbench``
    stays light."""
    from loaderbench.tuning import tune as run

    return run(dataset, **options)
