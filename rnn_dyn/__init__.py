"""rnn_dyn: train populations of RNNs, find their fixed points, compare them."""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
