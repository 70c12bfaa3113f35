"""rnn_dyn: train populations of RNNs, find their fixed points, compare them.

The public API a user types; submodules are imported on first use, so that
``import rnn_dyn`` stays cheap and lower layers never pull in upper ones.
"""
import importlib as _importlib
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_EXPORTS = {
    "find_fixed_points": "rnn_dyn.fixed_points",
    "find_population_fixed_points": "rnn_dyn.fixed_points",
    "FixedPoints": "rnn_dyn.fixed_points",
    "pairwise_distances": "rnn_dyn.similarity",
    "embed": "rnn_dyn.embedding",
    "separation": "rnn_dyn.embedding",
    "load_network": "rnn_dyn.tracking",
    "train_population": "rnn_dyn.training",
    "get_task": "rnn_dyn.tasks",
    "compute_transition_graphs": "rnn_dyn.transition_graphs",
    "compute_oscillatory_modes": "rnn_dyn.oscillation",
    "compute_integration_modes": "rnn_dyn.integration",
    "network_topology": "rnn_dyn.universality",
    "separation_test": "rnn_dyn.statistics",
    "mantel_test": "rnn_dyn.statistics",
    "bootstrap_ci": "rnn_dyn.statistics",
    "compute_claims": "rnn_dyn.claims",
    "from_torch": "rnn_dyn.importers",
    "from_keras": "rnn_dyn.importers",
    "load_foreign_network": "rnn_dyn.importers",
}
__all__ = sorted(_EXPORTS) + ["similarity"]


def __getattr__(name):
    if name == "similarity":
        return _importlib.import_module("rnn_dyn.similarity")
    if name in _EXPORTS:
        return getattr(_importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rnn_dyn' has no attribute {name!r}")
