"""Context-dependent integration (Mante et al. 2013; SPEC §2)."""
from __future__ import annotations

import numpy as np

from rnn_dyn.tasks import Task


class ContextTask(Task):
    """Integrate the stream the context cue selects, ignore the others.

    Inputs: ``n_contexts`` noisy streams ``mu_i + xi_t`` (``mu_i ~ U(-1, 1)``
    per trial, ``xi ~ N(0, noise_std^2)``), then ``n_contexts`` one-hot context
    channels.  Target: ``(1/T) sum_{s<=t} stream_{c,s}``.  Condition inputs:
    each context's one-hot with the streams at 0.
    """

    name = "context"
    n_outputs = 1

    def __init__(self, cfg):
        super().__init__(cfg)
        self.n_inputs = 2 * cfg.n_contexts

    @property
    def x_cond(self):
        n = self.cfg.n_contexts
        return np.concatenate([np.zeros((n, n)), np.eye(n)], axis=1).astype(np.float32)

    def _trials(self, rng, n_trials):
        n, T = self.cfg.n_contexts, self.n_time
        context = rng.integers(n, size=n_trials)
        mu = rng.uniform(-1.0, 1.0, size=(n_trials, n))
        streams = mu[:, None, :] + self.cfg.noise_std * rng.standard_normal((n_trials, T, n))
        cue = np.broadcast_to(np.eye(n)[context][:, None, :], (n_trials, T, n))
        relevant = np.take_along_axis(streams, context[:, None, None], axis=2)
        targets = np.cumsum(relevant, axis=1) / T
        inputs = np.concatenate([streams, cue], axis=2)
        return {"inputs": inputs, "targets": targets, "context": context, "mu": mu}
