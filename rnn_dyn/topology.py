"""Fixed-point graphs and their distances (SPEC §5 "Topology"; Maheswaranathan et al. 2019, §3).

One import for the flip-flop topology, each concept in its own module:

- **Transition graphs**, :mod:`rnn_dyn.transition_graphs`:
  :func:`compute_transition_graphs` settles perturbed starts around each
  unstable fixed point and records where they end; :func:`readout_order`
  orders the nodes so that the matrices of different networks align.
- **Distances between transition graphs**, :mod:`rnn_dyn.graph_distances`:
  :func:`graph_distance` (the paper's, with :func:`keep_modal_count`),
  :func:`graph_matching_distance`, :func:`pairwise_graph_distances`.

The chains of input-dependent fixed points (sine, context integration) are in
:mod:`rnn_dyn.chains`.
"""
from rnn_dyn.graph_distances import (MODES, graph_distance, graph_matching_distance,
                                     keep_modal_count, pairwise_graph_distances)
from rnn_dyn.transition_graphs import TransitionGraph, compute_transition_graphs, readout_order

__all__ = ["MODES", "TransitionGraph", "compute_transition_graphs", "graph_distance",
           "graph_matching_distance", "keep_modal_count", "pairwise_graph_distances",
           "readout_order"]
