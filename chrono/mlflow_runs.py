"""MLflow runs of the suite: one store, runs addressed by id, parents for sweeps (evaluation, training, sweeps).

The store is ``sqlite:///<repo>/outputs/mlflow.db`` (artifacts beside it in ``outputs/mlartifacts``) unless
MLFLOW_TRACKING_URI says otherwise (MLflow 3 refuses the plain file store). Runs are driven through
``MlflowClient`` with explicit run ids, never MLflow's global "active run", so that several jobs of one Hydra
multirun (same process) and a sweep's parent run never step on each other.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

from chrono.files import project_root

PARENT_RUN_ENV = "CHRONO_MLFLOW_PARENT_RUN_ID"  # set by chrono.sweep for the jobs of a multirun
PARENT_RUN_FILE = "mlflow_parent_run_id"  # the same id, written into the sweep folder
_MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else the suite's sqlite store under outputs/ (created on demand)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    outputs = project_root() / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{outputs / 'mlflow.db'}"


def artifact_location() -> str | None:
    """Where new experiments keep artifacts: ``mlartifacts/`` beside a sqlite store (MLflow would otherwise use
    ./mlruns in whatever folder the command runs from); the server's choice for any other store."""
    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri())


def experiment_id(name: str) -> str:
    """The id of experiment ``name``, created if missing (safe against a concurrent creation)."""
    from mlflow.exceptions import MlflowException

    client = _client()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location())
    except MlflowException:  # another process created it in between
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def flatten_config(cfg: Any, prefix: str = "") -> dict[str, str]:
    """A (resolved) OmegaConf config or nested mapping -> {"a.b.c": "value"}, the ``hydra`` node left out.

    Lists become their JSON text; values are cut to MLflow's 6000-character limit.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, str] = {}
    for key, value in (cfg or {}).items():
        name = f"{prefix}{key}"
        if not prefix and key == "hydra":
            continue
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, prefix=f"{name}."))
        else:
            text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
            flat[name] = text[:_MAX_PARAM_CHARS]
    return flat


def git_commit(repo: Path | None = None) -> str | None:
    """The checkout's commit hash, with "-dirty" when tracked files changed; None outside git."""
    repo = repo or project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def parent_run_id(sweep_dir: str | Path | None = None) -> str | None:
    """The MLflow parent run of the current multirun, if any: from the environment, else the sweep folder."""
    found = os.environ.get(PARENT_RUN_ENV)
    if found:
        return found
    if sweep_dir is not None:
        marker = Path(sweep_dir) / PARENT_RUN_FILE
        if marker.is_file():
            return marker.read_text().strip() or None
    return None


def hydra_sweep_dir() -> Path | None:
    """The sweep folder when running as a job of a Hydra multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return Path(hc.sweep.dir)
    except (ImportError, ValueError):
        pass
    return None


class MlflowRun:
    """One MLflow run, addressed by id. Use :func:`start_run` to make one.

    As a context manager it always ends the run: FINISHED when the block completes, KILLED when it is
    interrupted (Ctrl-C, or a termination signal turned into :class:`KeyboardInterrupt`), FAILED otherwise.
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.client = _client()

    def __enter__(self) -> "MlflowRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end()
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(str(k)[:250], str(v)[:_MAX_PARAM_CHARS]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(str(k), float(v), now, step or 0) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_table(self, rows: Sequence[Mapping[str, Any]], artifact_file: str) -> None:
        """A table (list of same-keyed rows) as an MLflow table artifact (shown in the UI's comparison view)."""
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        data = {c: [row.get(c) for row in rows] for c in columns}
        self.client.log_table(self.run_id, data, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        """Every file under ``folder``, kept in its subfolders, under ``artifact_path``."""
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def log_dict(self, data: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, data, artifact_file)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)


def start_run(
    experiment: str,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> MlflowRun:
    """Create a run in ``experiment`` (a child of ``parent_run_id`` if given), tagged with the git commit."""
    all_tags = {"mlflow.source.git.commit": git_commit() or "unknown"}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    run = _client().create_run(experiment_id(experiment), run_name=run_name, tags=all_tags)
    return MlflowRun(run.info.run_id)
