"""Frequency-cued sine wave generation (SPEC §2)."""
from __future__ import annotations

import numpy as np

from rnn_dyn.tasks import Task


class SineTask(Task):
    """A static input ``u ~ U(0, 1)`` cues the output ``sin(omega(u) t)``.

    ``omega(u) = omega_min + (omega_max - omega_min) u`` radians per step, ``t``
    the step index.  ``n_inputs = n_outputs = 1``; the condition inputs are the
    ``n_grid`` evenly spaced values of ``u`` in [0, 1], which are also the
    probe set: one trial per cue of the grid (paper §3.2, Fig. 2: the
    trajectories over the cue values, coloured by input frequency).
    """

    name = "sine"
    n_inputs = 1
    n_outputs = 1

    def omega(self, u):
        """Angular frequency per step for cue ``u``."""
        return self.cfg.omega_min + (self.cfg.omega_max - self.cfg.omega_min) * np.asarray(u)

    @property
    def grid(self):
        return np.linspace(0.0, 1.0, self.cfg.n_grid)

    @property
    def x_cond(self):
        return self.grid[:, None].astype(np.float32)

    def trials_for(self, u) -> dict:
        """Trials with the given cues ``u`` (e.g. :attr:`grid`), ``[n_trials]``."""
        u = np.asarray(u, np.float64)
        t = np.arange(self.n_time)
        inputs = np.broadcast_to(u[:, None, None], (len(u), self.n_time, 1))
        targets = np.sin(self.omega(u)[:, None] * t[None, :])[:, :, None]
        return {"inputs": inputs.astype(np.float32), "targets": targets.astype(np.float32), "u": u}

    def probe_set(self) -> dict:
        """One trial per cue of :attr:`grid`, in grid order (``n_probe`` and ``probe_seed`` are unused)."""
        return self.trials_for(self.grid)

    def _trials(self, rng, n_trials):
        return self.trials_for(rng.random(n_trials))
