"""Experiments as data: model (typed schema) and loading (TOML, clear errors)."""
from harness.experiment.loading import ExperimentError, discover, expand, experiment_name, from_dict, load_experiment
from harness.experiment.model import PROFILES, SYSTEMS, Bound, Experiment

__all__ = ["PROFILES", "SYSTEMS", "Bound", "Experiment", "ExperimentError", "discover", "expand", "experiment_name",
           "from_dict", "load_experiment"]
