"""Benchmarks: the load generator's ceiling and each shop's acceptance ceiling (see docs/performance.md).

Run from the repository root, e.g. `python -m benchmarks.generator_ceiling` or
`python -m benchmarks.shop_ceiling --shop both`. Results go to benchmarks/results/ (not versioned).
"""
