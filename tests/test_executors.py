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
