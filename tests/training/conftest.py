"""Helpers for training tests: compose the real Hydra config, run chrono.train in-process or as a command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Small enough for seconds per run on 2 cores: tiny ViT at 8 x 8 tokens, 4 clips of 8 frames at 64 x 64.
FAST = [
    "experiment=smoke", "val.every=0", "final_eval=false", "mlflow.enabled=false",
    "dataset.num_tracks=16", "dataset.num_frames=6",
]


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """MLflow store and generated data inside tmp_path; returns the environment for subprocesses."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CHRONO_DATA_DIR", str(tmp_path / "data"))
    return dict(os.environ)


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from chrono import dist

    dist.register_resolvers()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


def run_train(overrides, run_dir: Path):
    """chrono.train.train in this process (a world of one)."""
    from chrono.train import train

    return train(compose(overrides), Path(run_dir))


def run_command(args, env, cwd, timeout=600):
    """A command with the repo's interpreter; returns the CompletedProcess (output captured)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def fast():
    """Overrides for a seconds-long training run."""
    return list(FAST)


@pytest.fixture()
def trainer(isolated):
    """run_train, with MLflow and generated data isolated in tmp_path."""
    return run_train


@pytest.fixture()
def composer():
    return compose


@pytest.fixture()
def command(isolated):
    """Run ``python <args>`` from the repo root with the isolated environment."""

    def run(args, timeout=600, env=None):
        return run_command(args, {**isolated, **(env or {})}, REPO, timeout)

    return run
