"""The study's configuration: a sweep of populations, its hyperparameter search, its analyses.

:class:`SweepConfig` expands into the :class:`~rnn_dyn.config.RunConfig` of
every population of a sweep; :class:`SearchConfig` draws a random
hyperparameter search per configuration (SPEC §3); :class:`AnalysisConfig`
holds the settings of the study's analyses (SPEC §4-6), whose stages are
``STAGES``.  Like :mod:`rnn_dyn.config`, every config is checked when built,
with a message naming the field, the value and the allowed choices.
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
from rnn_dyn.config import (ACTIVATIONS, CELLS, INITIALIZERS, TASKS, ModelConfig, RunConfig, TaskConfig,
                            TrainConfig, configuration, make_config)

SEARCH_FIELDS = ("lr", "clip", "decay_rate", "momentum")  # what a hyperparameter search draws
STAGES = ("fixed_points", "compare", "topology", "report")  # a study's analyses, in order
FIXED_POINT_BUDGET = (1024, 16)  # default starts per network, spread over the conditions; at least per condition

# Geometry comparisons by name: (similarity metric, its options). SVCCA keeps 95% of the
# variance by default; the SVCCA authors also used a fixed k (SPEC §5).
GEOMETRY = {"svcca": ("svcca", {}), "svcca_k10": ("svcca", {"k": 10}), "svcca_k20": ("svcca", {"k": 20}),
            "cka": ("cka", {}), "cca": ("cca", {}), "procrustes": ("procrustes", {}),
            # Dynamical similarity (Ostrow et al. 2023): DMD operators of autonomous segments of
            # the DSA probes, compared up to rotation; n_delays and rank chosen by fit (DSA_FIT).
            "dsa": ("dsa", {"kind": "angular"})}
# How fixed-point graphs of differing sizes are compared: "paper" discards the networks off the
# modal node count and compares the ordered matrices (§3.1's footnote; the claims' default),
# "matching" pairs nodes by readout (flip-flop) or pools chains (sine) and keeps every network.
TOPOLOGY_MODES = ("paper", "matching")


def default_starts(n_conditions: int) -> int:
    """Fixed-point search starts per condition when none are given: 1024 per network spread over
    the task's conditions, at least 16 each (flip-flop 1024, context 512, sine 20 for its 51 inputs)."""
    total, least = FIXED_POINT_BUDGET
    return max(least, total // n_conditions)


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
    :func:`default_starts`: 1024 spread over the task's conditions, at least 16); ``fixed_points``:
    further options of :func:`~rnn_dyn.find_fixed_points`.  ``metrics``: the
    geometry comparisons per task, names of ``GEOMETRY`` (with topology,
    ``svcca`` and ``cka`` always: the universality table and the claims use them).  ``mode``: how
    the topology distances of the flip-flop and sine treat differing fixed-point
    counts (``TOPOLOGY_MODES``; the other mode is computed too, as a sensitivity
    row); ``n_perturb``: starts per point of the flip-flop transition graphs.  ``n_permutations`` and
    ``n_bootstrap``: the claims' statistics (SPEC §6).  ``untrained_metrics``
    and ``untrained_inits``: trained against untrained vanilla networks (paper
    Fig. 4; :func:`~rnn_dyn.jobs.untrained_job`): SVCCA at 95% and at k = 10
    (paper §2.3; the claim's measure), CCA (the paper's Fig. 4 wording, a
    sensitivity row); the untrained networks under the networks' own
    recurrent initialisation (ours: orthogonal, gain 1) and, as sensitivity
    rows, identity (Le et al. 2015, cited by the paper for relu networks, §1)
    and Gaussian with standard deviation 1/sqrt(N) (``normal``).
    """

    n_starts: int | None = None
    seed: int = 0
    fixed_points: dict = field(default_factory=dict)
    metrics: tuple = ("svcca", "cka", "svcca_k10", "svcca_k20", "cca", "dsa")
    mode: str = "paper"
    n_perturb: int = 100
    n_permutations: int = 999
    n_bootstrap: int = 1000
    untrained_metrics: tuple = ("svcca", "svcca_k10", "cca")
    untrained_inits: tuple = ("orthogonal", "identity", "normal")

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
        metrics = _as_tuple("analysis.untrained_metrics", self.untrained_metrics)
        for m in metrics:
            check_choice("analysis.untrained_metrics", m, [g for g, (kind, _) in GEOMETRY.items() if kind != "dsa"])
        inits = _as_tuple("analysis.untrained_inits", self.untrained_inits)
        for i in inits:
            check_choice("analysis.untrained_inits", i, INITIALIZERS)
        object.__setattr__(self, "untrained_metrics", tuple(dict.fromkeys(metrics)))
        object.__setattr__(self, "untrained_inits", tuple(dict.fromkeys(inits)))


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


@dataclass(frozen=True)
class DSAFitConfig:
    """How the study chooses DSA's delays and rank: by how well the DMD model fits (Ostrow et al. 2023).

    Per task, each of ``n_sample`` networks (evenly spaced in the task's network order) has its
    autonomous segments (:mod:`rnn_dyn.dsa_probes`) projected on its ``n_pcs`` leading principal
    directions; every ``(n_delays, rank)`` is fitted on the segments but one in ``holdout`` and scored
    on those held out by the R² of one-step and ``horizon``-step predictions
    (:func:`~rnn_dyn.dsa_fit.sweep_dmd`). The choice (:func:`~rnn_dyn.dsa_fit.choose_dmd`) is the
    smallest model (rank, then delays) whose mean multi-step R² is within ``tolerance`` (relative) of
    the best; every network of the task is then compared with it. A chosen multi-step R² below
    ``r2_floor`` is logged with a warning and the flag ``dsa_fit_below_floor``, not hidden.
    Segments shorter than ``max(n_delays) + horizon + 2`` states are left out.
    """

    n_delays: tuple = (1, 5, 10, 20, 30)
    ranks: tuple = (2, 4, 6, 8, 10, 12, 16)  # rank 20 costs 1.6x rank 16 in pairwise time (benchmarks/dsa.py)
    n_pcs: int = 10
    horizon: int = 10
    holdout: int = 4
    tolerance: float = 0.01
    n_sample: int = 8
    r2_floor: float = 0.9

    def __post_init__(self):
        for name in ("n_delays", "ranks"):
            values = _as_tuple(f"dsa_fit.{name}", getattr(self, name))
            for v in values:
                check_positive(f"dsa_fit.{name}", v, integer=True)
            object.__setattr__(self, name, tuple(sorted(set(values))))
        for name in ("n_pcs", "horizon", "n_sample"):
            check_positive(f"dsa_fit.{name}", getattr(self, name), integer=True)
        check_range("dsa_fit.holdout", self.holdout, 2, math.inf, integer=True)
        check_range("dsa_fit.tolerance", self.tolerance, 0.0, 1.0)
        check_range("dsa_fit.r2_floor", self.r2_floor, -math.inf, 1.0)

    @property
    def min_length(self) -> int:
        """Fewest states a segment needs: the longest delay row, the horizon and one more transition."""
        return max(self.n_delays) + self.horizon + 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


DSA_FIT = DSAFitConfig()
FITTED = {"dsa": DSA_FIT}  # comparisons whose settings are chosen by fit: their settings join the stage key
