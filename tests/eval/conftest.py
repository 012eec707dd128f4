"""Helpers for the evaluation tests: the tapvid_tiny fixture, a private MLflow store, the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tapvid_dir(fixtures_dir) -> Path:
    """../shared/fixtures/tapvid_tiny: TAP-Vid files in the published formats with reference metrics."""
    return fixtures_dir / "tapvid_tiny"


@pytest.fixture(scope="session")
def expected(tapvid_dir) -> dict:
    return json.loads((tapvid_dir / "expected.json").read_text())


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """A sqlite MLflow store private to this test session (never the checkout's outputs/mlflow.db)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def run_command(mlflow_uri):
    """Run a command from the repository root with a private MLflow store; return the CompletedProcess."""

    def run(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(list(args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def evaluate(run_command, tmp_path):
    """``python -m chrono.evaluate <overrides>`` with run folders under tmp_path."""

    def run(*overrides: str, multirun: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        where = [f"hydra.sweep.dir={tmp_path / 'multirun'}"] if multirun else [f"hydra.run.dir={tmp_path / 'run'}"]
        return run_command(
            sys.executable, "-m", "chrono.evaluate", *(["-m"] if multirun else []), *overrides, *where, check=check
        )

    return run
