"""Frozen configuration objects: every number of SPEC.md is a default here.

A population of networks is described by one :class:`RunConfig`: the task it is
trained on (:class:`TaskConfig`), the architecture all members share
(:class:`ModelConfig`) and the training protocol (:class:`TrainConfig`), whose
per-member fields (seed, l2 and optimizer settings) may be scalars, broadcast
to every member, or tuples with one value per member.  Configs are checked in
``__post_init__`` so that bad input fails before any work starts, with a
message naming the field, the value and the allowed choices.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


from rnn_dyn._checks import check_choice, check_positive, check_range

TASKS = ("context", "flipflop", "sine")
CELLS = ("gru", "lstm", "ugrnn", "vanilla")
ACTIVATIONS = ("relu", "tanh")
# "normal": Gaussian with standard deviation gain / sqrt(fan_in); "identity": gain * I (Le et al.
# 2015, the initialisation the paper cites for relu networks; §1)
INITIALIZERS = ("glorot_uniform", "orthogonal", "normal", "identity", "zeros")
OPTIMIZERS = ("adam", "sgd")
DEFAULT_N_TIME = {"flipflop": 100, "sine": 500, "context": 100}
MEMBER_FIELDS = ("seed", "l2", "lr", "momentum", "decay_rate", "decay_steps", "clip")


@dataclass(frozen=True)
class TaskConfig:
    """A task and its generator settings (SPEC §2).

    ``n_time=None`` takes the task's own default (100, 500, 100).  Probe sets
    (what representations are compared on, SPEC §5): the flip-flop's are
    ``n_probe`` random trials (``probe_seed``); the sine's are the ``n_grid``
    cue values of the evaluation grid (paper §3.2, Fig. 2: trajectories
    coloured by input frequency); context integration's are ``n_probe`` random
    trials, and its structured probes (paper §3.3, Fig. 3a inset and Fig. 4)
    hold the relevant stream noise-free at ``n_probe_levels`` levels spanning
    the means' range [-1, 1] (an odd count puts one at 0).
    """

    name: str = "flipflop"
    n_time: int | None = None
    # flip-flop
    n_bits: int = 3
    p_flip: float = 0.05
    # sine
    omega_min: float = 2 * math.pi * 0.01
    omega_max: float = 2 * math.pi * 0.05
    n_grid: int = 51
    # context integration
    n_contexts: int = 2
    noise_std: float = 1.0
    n_probe_levels: int = 11  # structured probes per context (our choice; the paper draws them, §3.3)
    # fixed sets shared by every network of the task
    n_val: int = 256
    val_seed: int = 1_000_003
    n_probe: int = 64
    probe_seed: int = 2_000_003

    def __post_init__(self):
        check_choice("task", self.name, TASKS)
        if self.n_time is None:
            object.__setattr__(self, "n_time", DEFAULT_N_TIME[self.name])
        for name in ("n_time", "n_bits", "n_grid", "n_contexts", "n_val", "n_probe",
                     "n_probe_levels"):
            check_positive(name, getattr(self, name), integer=True)
        check_range("p_flip", self.p_flip, 0.0, 1.0)
        check_positive("omega_min", self.omega_min)
        if not self.omega_max > self.omega_min:
            raise ValueError(
                f"omega_max must be greater than omega_min={self.omega_min}; got {self.omega_max}."
            )
        check_range("noise_std", self.noise_std, 0.0, math.inf)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture shared by every member of a population (SPEC §1)."""

    cell: str = "gru"
    activation: str = "tanh"
    n_units: int = 64
    input_init: str = "glorot_uniform"
    recurrent_init: str = "orthogonal"
    readout_init: str = "glorot_uniform"
    recurrent_gain: float = 1.0
    forget_bias: float = 1.0

    def __post_init__(self):
        check_choice("cell", self.cell, CELLS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_positive("n_units", self.n_units, integer=True)
        for name in ("input_init", "recurrent_init", "readout_init"):
            check_choice(name, getattr(self, name), INITIALIZERS)
        check_positive("recurrent_gain", self.recurrent_gain)


@dataclass(frozen=True)
class TrainConfig:
    """Training protocol for a population (SPEC §3).

    ``jit_compile`` compiles the training step with XLA, in pieces of two
    members that run concurrently on the cores (:func:`rnn_dyn.training.shards`;
    a population smaller than the cores also splits each member's batch:
    :func:`~rnn_dyn.training.batch_splits`).
    The fields named in ``MEMBER_FIELDS`` take a scalar (every member the
    same; a scalar ``seed`` gives members ``seed, seed + 1, ...``) or a tuple
    of ``n_networks`` values.
    """

    n_networks: int = 1
    iterations: int = 2000
    batch_size: int = 64
    optimizer: str = "sgd"
    seed: Any = 0
    l2: Any = 1e-4
    lr: Any = 0.1
    momentum: Any = 0.9
    decay_rate: Any = 0.7
    decay_steps: Any = 1000
    clip: Any = 1.0
    log_every: int = 100
    jit_compile: bool = True

    def __post_init__(self):
        check_positive("n_networks", self.n_networks, integer=True)
        check_range("iterations", self.iterations, 0, math.inf, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("log_every", self.log_every, integer=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not isinstance(self.jit_compile, bool):
            raise TypeError(f"jit_compile must be True or False; got {self.jit_compile!r}.")
        for name in MEMBER_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                if len(value) != self.n_networks:
                    raise ValueError(
                        f"{name} must have one value per network (n_networks={self.n_networks});"
                        f" got {len(value)} values: {list(value)}."
                    )
                object.__setattr__(self, name, tuple(value))
            for v in self.member_values(name):
                _check_member(name, v)

    def member_values(self, name: str) -> tuple:
        """The per-member values of field ``name`` (length ``n_networks``)."""
        value = getattr(self, name)
        if isinstance(value, tuple):
            return value
        if name == "seed":
            _check_member("seed", value)
            return tuple(int(value) + i for i in range(self.n_networks))
        return (value,) * self.n_networks

    def member(self, i: int) -> dict:
        """Member ``i``'s own settings, one scalar per field of ``MEMBER_FIELDS``."""
        return {name: self.member_values(name)[i] for name in MEMBER_FIELDS}


def _check_member(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    if name == "seed":
        check_range("seed", value, 0, 2**31 - 1, integer=True)
    elif name == "l2":
        check_range("l2", value, 0.0, math.inf)
    elif name == "momentum":
        check_range("momentum", value, 0.0, 1.0)
    elif name == "decay_rate":
        check_range("decay_rate", value, 0.0, 1.0, low_open=True)
    elif name == "decay_steps":
        check_positive("decay_steps", value)
    else:  # lr, clip
        check_positive(name, value)


@dataclass(frozen=True)
class RunConfig:
    """One population: task, architecture and training protocol."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Rebuild from :meth:`to_dict` output; unknown keys are an error."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict; got {type(d).__name__}.")
        parts = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}
        unknown = sorted(set(d) - set(parts))
        if unknown:
            raise ValueError(f"unknown config section(s) {unknown}; allowed: {sorted(parts)}.")
        return cls(**{k: make_config(parts[k], d.get(k, {}), k) for k in parts})

    def subset(self, members) -> "RunConfig":
        """The population of the given members only (indices into this one)."""
        members = list(members)
        per_member = {k: tuple(self.train.member_values(k)[i] for i in members) for k in MEMBER_FIELDS}
        train = dataclasses.replace(self.train, n_networks=len(members), **per_member)
        return dataclasses.replace(self, train=train)

    def member_config(self, i: int) -> "RunConfig":
        """The config of member ``i`` alone, as a population of one."""
        train = dataclasses.replace(self.train, n_networks=1, **self.train.member(i))
        return dataclasses.replace(self, train=train)


def make_config(cls, values: dict, section: str = ""):
    """``cls(**values)`` with a clear error for keys ``cls`` does not have."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        where = f" in {section}" if section else ""
        raise ValueError(f"unknown key(s) {unknown}{where}; allowed: {names}.")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


def configuration(cfg: RunConfig, i: int = 0) -> str:
    """Member ``i``'s configuration, ``task/cell/activation/n_units/l2``: what a search is for."""
    m = cfg.model
    return f"{cfg.task.name}/{m.cell}/{m.activation}/{m.n_units}/{cfg.train.member_values('l2')[i]!r}"
