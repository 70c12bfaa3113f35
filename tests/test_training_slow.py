"""Training to convergence (``tox -e slow``): the issue's acceptance runs."""
import pytest

from rnn_dyn import experiments
from rnn_dyn.sweep_config import SweepConfig

pytestmark = pytest.mark.slow


def test_flipflop_gru_reaches_low_validation_loss(mlflow_store):
    out = experiments.train(task="flipflop", cell="gru", activation="tanh", n_units=64, n_networks=4,
                            iterations=2000)
    assert max(out["val_loss"]) < 0.02, out["val_loss"]


@pytest.mark.parametrize("task", ["flipflop", "sine", "context"])
def test_quick_spec_trains_every_cell(mlflow_store, task):
    """Each network below a tenth of the zero-output loss, none diverged (relu LSTM on sine excepted)."""
    from rnn_dyn.training import train_run

    spec = SweepConfig.from_dict({**experiments.load_spec("quick"), "tasks": [task]})
    failures = []
    for job in spec.expand():
        result = train_run(job)
        excepted = task == "sine" and job.model.cell == "lstm" and job.model.activation == "relu"
        bad = result["diverged"] | ~(result["val_loss"] < 0.1 * result["zero_loss"])
        if bad.any() and not excepted:
            failures.append((job.model.cell, job.model.activation, result["val_loss"].tolist()))
    assert not failures, failures
