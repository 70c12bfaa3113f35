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
    mu_range = (-1.0, 1.0)  # the streams' means are uniform over it (SPEC §2)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.n_inputs = 2 * cfg.n_contexts

    @property
    def x_cond(self):
        n = self.cfg.n_contexts
        return np.concatenate([np.zeros((n, n)), np.eye(n)], axis=1).astype(np.float32)

    @property
    def levels(self) -> np.ndarray:
        """The structured probes' stream levels: ``n_probe_levels`` evenly spaced over ``mu_range``."""
        return np.linspace(*self.mu_range, self.cfg.n_probe_levels)

    def trials_for(self, context, mu, noise=None) -> dict:
        """Trials with the given contexts ``[n_trials]`` and stream means ``[n_trials, n_contexts]``;
        ``noise [n_trials, n_time, n_contexts]`` is added to the streams (default none)."""
        n, T = self.cfg.n_contexts, self.n_time
        context, mu = np.asarray(context), np.asarray(mu, np.float64)
        streams = np.broadcast_to(mu[:, None, :], (len(mu), T, n))
        if noise is not None:
            streams = streams + noise
        cue = np.broadcast_to(np.eye(n)[context][:, None, :], (len(mu), T, n))
        relevant = np.take_along_axis(streams, context[:, None, None], axis=2)
        targets = np.cumsum(relevant, axis=1) / T
        inputs = np.concatenate([streams, cue], axis=2)
        return {"inputs": inputs, "targets": targets, "context": context, "mu": mu}

    def structured_probes(self) -> dict:
        """The structured probe trials (paper §3.3, Fig. 3a inset and Fig. 4), context by context.

        For each context ``c`` and each of :attr:`levels`: the relevant stream
        ``c`` held at that level with no noise for the whole trial, every other
        stream at 0, context ``c``'s one-hot on.  Trials are ordered context
        first, then level (``n_contexts * n_probe_levels`` in all).

        Returns
        -------
        dict
            ``inputs [n_trials, n_time, n_inputs]``, ``targets [n_trials,
            n_time, 1]`` (float32), ``context [n_trials]`` and ``level
            [n_trials]``.
        """
        n, levels = self.cfg.n_contexts, self.levels
        context = np.repeat(np.arange(n), len(levels))
        level = np.tile(levels, n)
        mu = np.zeros((len(level), n))
        mu[np.arange(len(level)), context] = level
        trials = self.trials_for(context, mu)
        trials["inputs"] = trials["inputs"].astype(np.float32)
        trials["targets"] = trials["targets"].astype(np.float32)
        return {**trials, "level": level}

    def _trials(self, rng, n_trials):
        n, T = self.cfg.n_contexts, self.n_time
        context = rng.integers(n, size=n_trials)
        mu = rng.uniform(*self.mu_range, size=(n_trials, n))
        noise = self.cfg.noise_std * rng.standard_normal((n_trials, T, n))
        return self.trials_for(context, mu, noise)
