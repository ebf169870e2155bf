"""Regression: compare runs (compare), the committed baseline, statistics over repeats (stats), mutation tests (mutants)."""
