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
import hashlib
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_dyn._checks import check_choice, check_positive, check_range

TASKS = ("context", "flipflop", "sine")
CELLS = ("gru", "lstm", "ugrnn", "vanilla")
ACTIVATIONS = ("relu", "tanh")
INITIALIZERS = ("glorot_uniform", "orthogonal", "normal", "zeros")
OPTIMIZERS = ("adam", "sgd")
DEFAULT_N_TIME = {"flipflop": 100, "sine": 500, "context": 100}
MEMBER_FIELDS = ("seed", "l2", "lr", "momentum", "decay_rate", "decay_steps", "clip")
SEARCH_FIELDS = ("lr", "clip", "decay_rate", "momentum")  # what a hyperparameter search draws
STAGES = ("fixed_points", "compare", "topology", "report")  # a study's analyses, in order
# Geometry comparisons by name: (similarity metric, its options). SVCCA keeps 95% of the
# variance by default; the SVCCA authors also used a fixed k (SPEC §5).
GEOMETRY = {"svcca": ("svcca", {}), "svcca_k10": ("svcca", {"k": 10}), "svcca_k20": ("svcca", {"k": 20}),
            "cka": ("cka", {}), "cca": ("cca", {}), "procrustes": ("procrustes", {}),
            # Dynamical similarity (Ostrow et al. 2023): DMD operators of the probe trajectories
            # compared up to rotation; rank 10 as in its authors' examples.
            "dsa": ("dsa", {"n_delays": 1, "rank": 10, "kind": "angular"})}
TOPOLOGY_MODES = ("matching", "paper")


@dataclass(frozen=True)
class TaskConfig:
    """A task and its generator settings (SPEC §2).

    ``n_time=None`` takes the task's own default (100, 500, 100).
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
    # fixed sets shared by every network of the task
    n_val: int = 256
    val_seed: int = 1_000_003
    n_probe: int = 64
    probe_seed: int = 2_000_003

    def __post_init__(self):
        check_choice("task", self.name, TASKS)
        if self.n_time is None:
            object.__setattr__(self, "n_time", DEFAULT_N_TIME[self.name])
        for name in ("n_time", "n_bits", "n_grid", "n_contexts", "n_val", "n_probe"):
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


LOG_UNIFORM = ("lr", "clip")
# field: (lowest allowed, highest allowed, lowest excluded)
SEARCH_BOUNDS = {"lr": (0.0, math.inf, True), "clip": (0.0, math.inf, True),
                 "decay_rate": (0.0, 1.0, True), "momentum": (0.0, 1.0, False)}


@dataclass(frozen=True)
class SearchConfig:
    """Random hyperparameter search, per configuration (SPEC §3).

    For each (task, cell, activation, n_units, l2) of a sweep, ``n_candidates``
    settings are drawn, a function of ``seed`` and the configuration alone:
    ``lr`` and ``clip`` log-uniform, ``decay_rate`` and ``momentum`` uniform over
    their ``(low, high)`` ranges.  The candidates train together as one
    population for ``iterations`` (default: the configuration's own); the one
    with the lowest loss on the task's fixed validation set wins (a diverged
    one never does).  ``n_candidates=0``: no search.
    """

    n_candidates: int = 0
    seed: int = 0
    iterations: int | None = None
    lr: tuple = (1e-5, 0.1)
    clip: tuple = (0.1, 10.0)
    decay_rate: tuple = (0.1, 0.9)
    momentum: tuple = (0.0, 1.0)

    def __post_init__(self):
        check_range("search.n_candidates", self.n_candidates, 0, math.inf, integer=True)
        check_range("search.seed", self.seed, 0, 2**31 - 1, integer=True)
        if self.iterations is not None:
            check_positive("search.iterations", self.iterations, integer=True)
        for name, (low, high, low_open) in SEARCH_BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ValueError(f"search.{name} must be a [low, high] range; got {value!r}.")
            for v in value:
                check_range(f"search.{name}", v, low, high, low_open=low_open)
            if value[0] > value[1]:
                raise ValueError(f"search.{name} must be a [low, high] range with low <= high; got {list(value)}.")
            object.__setattr__(self, name, tuple(float(v) for v in value))

    def draw(self, configuration: str) -> dict:
        """The candidates' settings for one configuration: ``{field: n_candidates floats}``."""
        digest = hashlib.sha1(configuration.encode()).digest()
        rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
        out = {}
        for name in SEARCH_FIELDS:
            low, high = getattr(self, name)
            if name in LOG_UNIFORM:
                values = np.exp(rng.uniform(np.log(low), np.log(high), self.n_candidates))
            else:
                values = rng.uniform(low, high, self.n_candidates)
            out[name] = tuple(float(v) for v in values)
        return out


def configuration(cfg: RunConfig, i: int = 0) -> str:
    """Member ``i``'s configuration, ``task/cell/activation/n_units/l2``: what a search is for."""
    m = cfg.model
    return f"{cfg.task.name}/{m.cell}/{m.activation}/{m.n_units}/{cfg.train.member_values('l2')[i]!r}"


def best_candidate(val_loss, diverged) -> int | None:
    """A search's winner: the candidate with the lowest validation loss, diverged
    or non-finite ones excluded; ``None`` when none qualifies."""
    val_loss = np.asarray(val_loss, np.float64)
    ok = np.isfinite(val_loss) & ~np.asarray(diverged, bool)
    return int(np.argmin(np.where(ok, val_loss, np.inf))) if ok.any() else None


def apply_search(jobs: list, winners: dict) -> list:
    """``jobs`` with each member's ``SEARCH_FIELDS`` set to its configuration's winner.

    ``winners`` maps :func:`configuration` names to ``{field: value}``; members
    of a configuration without a winner (every candidate diverged) are left out.
    """
    out = []
    for job in jobs:
        keep = [i for i in range(job.train.n_networks) if configuration(job, i) in winners]
        if keep:
            job = job.subset(keep)
            names = [configuration(job, i) for i in range(job.train.n_networks)]
            values = {k: tuple(winners[c][k] for c in names) for k in SEARCH_FIELDS}
            out.append(dataclasses.replace(job, train=dataclasses.replace(job.train, **values)))
    return out


@dataclass(frozen=True)
class AnalysisConfig:
    """How a study analyses its networks (SPEC §4-6).

    ``n_starts``: fixed-point search starts per network and condition (``None``:
    1024 spread over the task's conditions, at least 64); ``fixed_points``:
    further options of :func:`~rnn_dyn.find_fixed_points`.  ``metrics``: the
    geometry comparisons per task, names of ``GEOMETRY`` (with topology,
    ``svcca`` and ``cka`` always: the universality table and the claims use them).  ``mode`` and
    ``n_perturb``: the flip-flop transition graphs.  ``n_permutations`` and
    ``n_bootstrap``: the claims' statistics (SPEC §6).
    """

    n_starts: int | None = None
    seed: int = 0
    fixed_points: dict = field(default_factory=dict)
    metrics: tuple = ("svcca", "cka", "svcca_k10", "svcca_k20", "cca", "dsa")
    mode: str = "matching"
    n_perturb: int = 100
    n_permutations: int = 999
    n_bootstrap: int = 1000

    def __post_init__(self):
        if self.n_starts is not None:
            check_positive("analysis.n_starts", self.n_starts, integer=True)
        check_range("analysis.seed", self.seed, 0, 2**31 - 1, integer=True)
        if not isinstance(self.fixed_points, dict):
            raise TypeError(f"analysis.fixed_points must be a mapping of find_fixed_points options;"
                            f" got {self.fixed_points!r}.")
        metrics = _as_tuple("analysis.metrics", self.metrics)
        for m in metrics:
            check_choice("analysis.metrics", m, GEOMETRY)
        object.__setattr__(self, "metrics", tuple(dict.fromkeys(metrics)))
        check_choice("analysis.mode", self.mode, TOPOLOGY_MODES)
        check_positive("analysis.n_perturb", self.n_perturb, integer=True)
        check_range("analysis.n_permutations", self.n_permutations, 99, math.inf, integer=True)
        check_range("analysis.n_bootstrap", self.n_bootstrap, 99, math.inf, integer=True)


def check_stages(stages) -> tuple:
    """A list of analyses as a tuple in pipeline order, with what each needs
    (topology needs fixed points and distances; the report needs topology)."""
    stages = () if stages is None else _as_tuple("analyses", stages, allow_empty=True)
    for s in stages:
        check_choice("analyses", s, STAGES)
    wanted = set(stages)
    if "report" in wanted:
        wanted.add("topology")
    if "topology" in wanted:
        wanted |= {"fixed_points", "compare"}
    return tuple(s for s in STAGES if s in wanted)


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: the product of tasks, cells, activations and sizes (SPEC §3).

    Each ``(task, cell, activation, n_units)`` is one population whose members
    span ``seeds`` x ``l2``, split so that none exceeds ``max_population``.
    ``defaults`` holds ``task``/``model``/``train`` fields for every
    population, ``by_task`` the same per task name (it wins over defaults) and
    ``by_config`` per ``"cell/activation"`` or ``"task:cell/activation"``
    (it wins over both).  ``seeds`` is a count (seeds ``0 .. seeds-1``) or an
    explicit list.  ``search`` (a :class:`SearchConfig` or its fields) asks for
    a hyperparameter search per configuration: its winner's settings then
    replace the spec's ``lr``, ``clip``, ``decay_rate`` and ``momentum``
    (:func:`apply_search`).  ``analyses`` are the study's stages after training
    (``STAGES``, all by default; ``[]`` trains only) and ``analysis`` their
    settings (an :class:`AnalysisConfig` or its fields).  ``note`` is shown at
    the top of the report (e.g. what the sweep's scale allows one to conclude).
    """

    experiment: str = "quick"
    tasks: tuple = TASKS
    cells: tuple = CELLS
    activations: tuple = ACTIVATIONS
    n_units: tuple = (64,)
    l2: tuple = (1e-4,)
    seeds: Any = 2
    max_population: int = 64
    defaults: dict = field(default_factory=dict)
    by_task: dict = field(default_factory=dict)
    by_config: dict = field(default_factory=dict)
    search: Any = field(default_factory=dict)
    analyses: tuple = STAGES
    analysis: Any = field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.experiment, str) or not self.experiment:
            raise ValueError(f"experiment must be a non-empty string; got {self.experiment!r}.")
        for name, choices in (("tasks", TASKS), ("cells", CELLS), ("activations", ACTIVATIONS)):
            values = _as_tuple(name, getattr(self, name))
            for v in values:
                check_choice(name, v, choices)
            object.__setattr__(self, name, values)
        for name in ("n_units", "l2"):
            object.__setattr__(self, name, _as_tuple(name, getattr(self, name)))
        if isinstance(self.seeds, (list, tuple)):
            object.__setattr__(self, "seeds", _as_tuple("seeds", self.seeds))
        else:
            check_positive("seeds", self.seeds, integer=True)
        check_positive("max_population", self.max_population, integer=True)
        for key in self.by_task:
            check_choice("by_task key", key, TASKS)
        for key in self.by_config:
            task, _, config = key.rpartition(":")
            cell, _, act = config.partition("/")
            if task:
                check_choice(f"task in by_config key {key!r}", task, TASKS)
            check_choice(f"cell in by_config key {key!r}", cell, CELLS)
            check_choice(f"activation in by_config key {key!r}", act, ACTIVATIONS)
        if isinstance(self.search, dict):
            object.__setattr__(self, "search", make_config(SearchConfig, self.search, "search"))
        elif not isinstance(self.search, SearchConfig):
            raise TypeError(f"search must be a mapping of {[f.name for f in dataclasses.fields(SearchConfig)]};"
                            f" got {self.search!r}.")
        object.__setattr__(self, "analyses", check_stages(self.analyses))
        if isinstance(self.analysis, dict):
            object.__setattr__(self, "analysis", make_config(AnalysisConfig, self.analysis, "analysis"))
        elif not isinstance(self.analysis, AnalysisConfig):
            raise TypeError(f"analysis must be a mapping of {[f.name for f in dataclasses.fields(AnalysisConfig)]};"
                            f" got {self.analysis!r}.")
        self.expand()  # every population's config is checked before any work
        self.search_jobs()

    @property
    def seed_list(self) -> tuple:
        return self.seeds if isinstance(self.seeds, tuple) else tuple(range(self.seeds))

    def _section(self, task: str, section: str, cell: str = "", act: str = "") -> dict:
        out = {}
        sources = [(self.defaults, "defaults"), (self.by_task.get(task, {}), f"by_task.{task}")]
        sources += [(self.by_config[k], f"by_config.{k}") for k in (f"{cell}/{act}", f"{task}:{cell}/{act}")
                    if k in self.by_config]
        for source, where in sources:
            if not isinstance(source, dict):
                raise TypeError(f"{where} must be a mapping; got {source!r}.")
            unknown = sorted(set(source) - {"task", "model", "train"})
            if unknown:
                raise ValueError(f"unknown key(s) {unknown} in {where}; allowed: ['model', 'task', 'train'].")
            out.update(source.get(section) or {})
        return out

    def _populations(self):
        """``(task, model, train section)`` of each ``(task, cell, activation, n_units)``."""
        for task, cell, act in itertools.product(self.tasks, self.cells, self.activations):
            task_cfg = make_config(TaskConfig, {**self._section(task, "task", cell, act), "name": task}, "task")
            train_kw = self._section(task, "train", cell, act)
            for key in ("n_networks", "seed", "l2"):
                if key in train_kw:
                    raise ValueError(f"train.{key} is set by the sweep (seeds, l2), not in a spec section.")
            model_kw = self._section(task, "model", cell, act)
            for n_units in self.n_units:
                yield task_cfg, make_config(ModelConfig, {**model_kw, "cell": cell, "activation": act,
                                                          "n_units": n_units}, "model"), train_kw

    def expand(self) -> list:
        """One :class:`RunConfig` per population job."""
        jobs = []
        members = [(s, l2) for s in self.seed_list for l2 in self.l2]
        for task_cfg, model, train_kw in self._populations():
            for i in range(0, len(members), self.max_population):
                chunk = members[i: i + self.max_population]
                train = make_config(TrainConfig, {
                    **train_kw, "n_networks": len(chunk),
                    "seed": tuple(m[0] for m in chunk), "l2": tuple(m[1] for m in chunk)}, "train")
                jobs.append(RunConfig(task_cfg, model, train))
        return jobs

    def search_jobs(self) -> list:
        """One :class:`RunConfig` per configuration (task, cell, activation, n_units, l2)
        whose members are its search candidates; empty without a search.

        The candidates share one network seed (``search.seed``: the same initial
        weights and data stream), so they differ in their drawn settings alone.
        """
        s, jobs = self.search, []
        n = s.n_candidates
        for task_cfg, model, train_kw in self._populations() if n else ():
            for l2 in self.l2:
                iterations = {"iterations": s.iterations} if s.iterations else {}
                base = RunConfig(task_cfg, model, make_config(TrainConfig, {
                    **train_kw, **iterations, "n_networks": n, "seed": (s.seed,) * n, "l2": (l2,) * n}, "train"))
                drawn = s.draw(configuration(base))
                jobs.append(dataclasses.replace(base, train=dataclasses.replace(base.train, **drawn)))
        return jobs

    @classmethod
    def from_dict(cls, d: dict) -> "SweepConfig":
        return make_config(cls, d, "spec")


def _as_tuple(name, value, allow_empty=False) -> tuple:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if not values and not allow_empty:
        raise ValueError(f"{name} must not be empty.")
    return values
