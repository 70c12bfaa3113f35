"""Tasks: seeded trial generators, condition inputs and the fixed validation and probe sets.

Every task turns a :class:`~rnn_dyn.config.TaskConfig` into trials
``inputs [n_trials, n_time, n_inputs]`` and ``targets [n_trials, n_time,
n_outputs]`` (float32, batch first) plus each trial's latent variables, drawn
from an ``np.random.Generator`` so that the same seed gives the same trials.
``x_cond`` are the condition inputs of SPEC §2 for fixed-point analysis.
"""
from __future__ import annotations

import numpy as np

from rnn_dyn._checks import check_choice
from rnn_dyn.config import TASKS, TaskConfig


class Task:
    """Base class: subclasses set ``n_inputs``/``n_outputs`` and implement ``_trials``."""

    name: str = ""

    def __init__(self, cfg: TaskConfig):
        self.cfg = cfg
        self.n_time = cfg.n_time

    def sample(self, rng: np.random.Generator, n_trials: int) -> dict:
        """Draw ``n_trials`` trials: a dict with ``inputs``, ``targets`` and latents."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}.")
        trials = self._trials(rng, int(n_trials))
        trials["inputs"] = trials["inputs"].astype(np.float32, copy=False)
        trials["targets"] = trials["targets"].astype(np.float32, copy=False)
        return trials

    def validation_set(self) -> dict:
        """The fixed validation trials every network of this task is scored on."""
        return self.sample(np.random.default_rng(self.cfg.val_seed), self.cfg.n_val)

    def probe_set(self) -> dict:
        """The fixed probe trials used to compare representations across networks: ``n_probe``
        trials drawn with ``probe_seed`` (the sine task probes its cue grid instead)."""
        return self.sample(np.random.default_rng(self.cfg.probe_seed), self.cfg.n_probe)

    def zero_loss(self, trials: dict) -> float:
        """MSE of always answering 0 on ``trials``: the baseline a network must beat."""
        return float(np.mean(np.square(trials["targets"])))

    @property
    def x_cond(self) -> np.ndarray:
        """Condition inputs for fixed-point analysis, ``[n_conditions, n_inputs]``."""
        raise NotImplementedError

    def _trials(self, rng, n_trials):
        raise NotImplementedError


def get_task(cfg) -> Task:
    """The task for a :class:`TaskConfig` (or a task name, with default settings)."""
    from rnn_dyn.tasks.context import ContextTask
    from rnn_dyn.tasks.flipflop import FlipFlopTask
    from rnn_dyn.tasks.sine import SineTask

    if isinstance(cfg, str):
        check_choice("task", cfg, TASKS)
        cfg = TaskConfig(name=cfg)
    registry = {"flipflop": FlipFlopTask, "sine": SineTask, "context": ContextTask}
    return registry[cfg.name](cfg)


__all__ = ["Task", "get_task"]
