import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A real MLflow SQLite store under tmp_path, as MLflow's default layout."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
