import os

import pytest

from rnn_dyn.executors import DaskExecutor, LocalExecutor

HERE = os.path.dirname(__file__)


@pytest.fixture
def workers_see_tests(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.syspath_prepend(HERE)


def test_local_executor_isolates_failures(workers_see_tests):
    from _jobs import double_or_fail

    out = {i: (r, e) for i, r, e in LocalExecutor(2).map(double_or_fail, [1, 0, -1, 3, 4])}
    assert out[0] == (2, None) and out[3] == (6, None) and out[4] == (8, None)
    assert out[1][0] is None and "job 0 fails on purpose" in out[1][1]
    assert out[2][0] is None and "worker process died" in out[2][1]


def test_dask_local_cluster(workers_see_tests):
    from _jobs import double_or_fail

    pool = DaskExecutor(workers=2)
    try:
        out = {i: (r, e) for i, r, e in pool.map(double_or_fail, [1, 0, 5])}
    finally:
        pool.close()
    assert out[0] == (2, None) and out[2] == (10, None)
    assert "job 0 fails on purpose" in out[1][1]


@pytest.mark.slow  # a LocalCluster that restarts a worker: about 1.5 min on 2 busy cores
def test_dask_retries_a_fixed_point_job_whose_worker_is_lost(workers_see_tests, tmp_path):
    """A LocalCluster worker killed during a fixed-point job: Dask reruns the job on a live
    worker, and each job's result comes back exactly once."""
    from _jobs import fixed_points_after_a_lost_worker

    from rnn_dyn.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
    from rnn_dyn.jobs import train_job

    cfg = RunConfig(TaskConfig("flipflop", n_time=10, n_val=8), ModelConfig("vanilla", n_units=4),
                    TrainConfig(n_networks=2, iterations=3, batch_size=4, jit_compile=False))
    trained = train_job(cfg)
    networks = [({k: v[i] for k, v in trained["weights"].items()}, cfg.member_config(i).to_dict()) for i in range(2)]
    items = [{"networks": [n], "n_starts": 16, "seed": 0, "options": {"max_iters": 200},
              "marker": str(tmp_path / f"lost-{i}")} for i, n in enumerate(networks)]
    pool = DaskExecutor(workers=2)
    try:
        out = list(pool.map(fixed_points_after_a_lost_worker, items))
    finally:
        pool.close()
    assert sorted(i for i, _, _ in out) == [0, 1]  # nothing lost, nothing twice
    assert all(e is None and len(r) == 1 for _, r, e in out), [e for _, _, e in out]
    assert all((tmp_path / f"lost-{i}").exists() for i in range(2))  # each first attempt lost its worker
