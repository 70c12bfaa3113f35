"""Linearized dynamics around fixed points: oscillation and integration (paper §3.2–3.3).

One import for the analyses of the linearized dynamics, each in its own module;
every function reads a :class:`~rnn_dyn.fixed_points.FixedPoints` and returns
numpy arrays or a small result container; nothing is re-linearized.

- **Sine** (SPEC §5, paper Fig. 2d–f), :mod:`rnn_dyn.oscillation`:
  :func:`compute_oscillatory_modes` compares the frequency of each condition's
  dominant oscillatory mode with the task's ``ω(u)``.
- **Context integration** (SPEC §5, paper Fig. 3d–f), :mod:`rnn_dyn.integration`:
  :func:`count_near_one`, :func:`integration_curve`, bundled per point by
  :func:`compute_integration_modes`.
- Helpers, :mod:`rnn_dyn.point_groups`: :func:`nearest_points` picks the point
  a network uses, :func:`group_summary` averages per-network numbers per label group.
"""
from rnn_dyn.integration import (IntegrationModes, compute_integration_modes, count_near_one,
                                 geometric_sum, integration_curve, mode_readouts, modes_needed)
from rnn_dyn.oscillation import (OscillatoryModes, compute_oscillatory_modes,
                                 dominant_oscillatory_eigval)
from rnn_dyn.point_groups import group_summary, nearest_points

__all__ = ["IntegrationModes", "OscillatoryModes", "compute_integration_modes",
           "compute_oscillatory_modes", "count_near_one", "dominant_oscillatory_eigval",
           "geometric_sum", "group_summary", "integration_curve", "mode_readouts", "modes_needed",
           "nearest_points"]
