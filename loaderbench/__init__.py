"""HOW DataLoader speed is measured and judged: grid, measurement, plugin, baselines, gate, report."""

__version__ = "0.1.0"
