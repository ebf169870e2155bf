"""Elasticity: scaling the barista pool (scaling), the autoscaler policy, queueing theory, scaling curves."""
