"""Benchmarks: each figure is a ratio of two timings (or sizes) taken in the same run. `python -m bench.run`."""
